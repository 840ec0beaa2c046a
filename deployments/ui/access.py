"""The middleware in front of every route: the access token, the security headers and the Server-Timing header."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from deployments.ui import auth
from deployments.ui.context import is_api, ui_context

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


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Let a request through when it carries the token (or none is set), then add the headers."""
    started = time.perf_counter()
    token = ui_context(request).token
    if token is not None and not is_public(request.url.path) and not auth.authorized(
            token, request.headers.get("authorization"), request.cookies.get(auth.COOKIE)):
        response = unauthorized(request)
    else:
        response = await call_next(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.2f}"
    response.headers.update(SECURITY_HEADERS)
    return response
