"""The middleware in front of every route: the Host check (open mode), the access token, the security headers
and the Server-Timing header."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from deployments.ui import auth
from deployments.ui.context import is_api, ui_context
from deployments.ui.hosts import host_allowed

SECURITY_HEADERS = {
    "Content-Security-Policy":
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def is_public(path: str) -> bool:
    """Paths served without the token: the login form and the stylesheets."""
    return path in ("/login", "/logout") or path.startswith("/static/")


def unauthorized(request: Request) -> Response:
    """401: JSON under /api, the login form elsewhere."""
    response: Response
    if is_api(request):
        response = JSONResponse({"detail": "missing or wrong access token (QMP_UI_TOKEN)"}, status_code=401)
    else:
        response = ui_context(request).render(request, "login.html", status=401, next=request.url.path,
                                              failed=False, logged_in=False)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def wrong_host(request: Request) -> Response:
    """400 for a Host header this page is not reached by (plain text: the page is not for that site)."""
    return PlainTextResponse(
        "400 Bad Request: this registry page is not served under that host name (set QMP_UI_ALLOWED_HOSTS "
        "or QMP_UI_URL to serve it under another name)", status_code=400)


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Let a request through when it carries the token, or, with none set, names an allowed host; then add
    the headers."""
    started = time.perf_counter()
    context = ui_context(request)
    token = context.token
    if token is None and not host_allowed(request.headers.get("host"), context.hosts):
        response = wrong_host(request)
    elif token is not None and not is_public(request.url.path) and not auth.authorized(
            token, request.headers.get("authorization"), request.cookies.get(auth.COOKIE)):
        response = unauthorized(request)
    else:
        response = await call_next(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.2f}"
    response.headers.update(SECURITY_HEADERS)
    return response
