"""The login form, logging in (the token becomes a cookie) and logging out."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deployments.ui import auth
from deployments.ui.context import Context

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, ui: Context, next: str = "/") -> HTMLResponse:
    return ui.render(request, "login.html", status=200 if ui.token is None else 401, next=auth.safe_next(next),
                     failed=False, logged_in=False)


@router.post("/login")
async def login(request: Request, ui: Context) -> Response:
    form = parse_qs((await request.body()).decode(errors="replace"))
    given, target = form.get("token", [""])[0], auth.safe_next(form.get("next", ["/"])[0])
    if ui.token is None:
        return RedirectResponse(target, status_code=303)
    if not auth.token_matches(given, ui.token):
        return ui.render(request, "login.html", status=401, next=target, failed=True, logged_in=False)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.COOKIE, auth.cookie_value(ui.token), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response
