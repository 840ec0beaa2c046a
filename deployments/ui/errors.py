"""Errors as a page (or JSON under /api) that says what happened, never a traceback."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.ui.context import is_api, ui_context
from registry import RegistryUnavailableError

TITLES = {404: "Not found", 405: "Method not allowed"}


def not_found(what: str) -> HTTPException:
    """The 404 a route raises, saying which name, version or replay is missing."""
    return HTTPException(404, what)


def error(request: Request, status: int, title: str, message: str, details: list[str] | None = None) -> Response:
    """The error page, or `{"detail": message, "errors": details}` under /api."""
    if is_api(request):
        return JSONResponse({"detail": message, **({"errors": details} if details else {})}, status_code=status)
    return ui_context(request).render(request, "error.html", status=status, title=title, message=message,
                                      details=details or [])


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    return error(request, exc.status_code, TITLES.get(exc.status_code, "Error"), str(exc.detail))


async def bad_query(request: Request, exc: RequestValidationError) -> Response:
    details = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
    return error(request, 422, "Invalid request", "The request's parameters are not valid.", details)


async def database_down(request: Request, exc: Exception) -> Response:
    return error(request, 503, "Registry database unavailable",
                 "The registry database cannot be reached right now; try again in a moment.")


async def unexpected(request: Request, exc: Exception) -> Response:
    return error(request, 500, "Internal error", "The page could not be built; the server log has the details.")


def add_error_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, invalid requests, a database that is down and anything unexpected."""
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(RequestValidationError)(bad_query)
    app.exception_handler(OperationalError)(database_down)
    app.exception_handler(RegistryUnavailableError)(database_down)
    app.exception_handler(Exception)(unexpected)
