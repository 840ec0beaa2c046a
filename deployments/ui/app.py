"""The web app: HTML pages and their JSON twins under /api, read-only, over the registry of the settings.

Actions (promote, roll back, approve) are not here: the pages link to the Prefect deployments and to the paused
run's Resume form, so every decision keeps its one recorded path.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.ui import auth, views
from deployments.ui.settings import UISettings
from registry import ModelNotFoundError, ModelRegistry, ModelStatus, RegistryUnavailableError
from registry.models import validate_metric_name
from registry.replays import REPLAY_ID_PATTERN
from registry.settings import Settings
from registry.views.browse import UnknownName, UnknownReplay

HERE = Path(__file__).parent
STATUSES = [s.value for s in ModelStatus]
MAX_PER_PAGE = 200

# Query parameters (module level: FastAPI resolves the annotations in this module's namespace).
Status = Annotated[list[ModelStatus], Query(description=f"Only these statuses ({', '.join(STATUSES)}).")]
MinMetric = Annotated[list[str], Query(alias="min", description="METRIC:VALUE lower bound, e.g. ic_mean:0.02.")]
ReplayId = Annotated[str | None, Query(pattern=REPLAY_ID_PATTERN.pattern,
                                       description="The versions of this rolling replay of the name.")]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Versions per page.")]
ModelId = Annotated[str, Query(min_length=1, max_length=200, description="A model id, `{name}_v{version}`.")]


class RegistryHolder:
    """The app's one registry, opened on first use; a database that is down when the app starts (or later)
    gives 503 pages, and the next request tries again."""

    def __init__(self, settings: Settings | None, registry: ModelRegistry | None) -> None:
        self._settings = settings
        self._registry = registry
        self._lock = threading.Lock()

    def get(self) -> ModelRegistry:
        if self._registry is None:
            with self._lock:
                if self._registry is None:
                    # A short retry budget: a person waiting on a page wants the 503 within seconds.
                    self._registry = ModelRegistry.from_settings(self._settings, retry_budget_s=2.0)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "svg"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["num"] = lambda value: "–" if value is None else f"{value:.4f}"
    env.filters["when"] = lambda value: "–" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    env.filters["size"] = _size
    return env


def _size(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def _min_metrics(values: list[str]) -> dict[str, float]:
    """`metric:value` lower bounds (as `qmp models list --min metric=value`); a bad one is a 422."""
    bounds: dict[str, float] = {}
    for item in values:
        metric, sep, number = item.replace("=", ":", 1).partition(":")
        try:
            if not sep:
                raise ValueError("expected METRIC:VALUE")
            validate_metric_name(metric)
            value = float(number)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("the bound must be a finite number")
        except Exception as exc:
            raise RequestValidationError([{
                "type": "value_error", "loc": ("query", "min"), "input": item,
                "msg": f"invalid metric bound {item!r}: {exc} (expected METRIC:VALUE, e.g. ic_mean:0.02)",
            }]) from None
        bounds[metric] = value
    return bounds


def create_app(
    ui_settings: UISettings | None = None, registry_settings: Settings | None = None,
    registry: ModelRegistry | None = None, *, freeze_startup_objects: bool = False,
) -> FastAPI:
    """The app over the registry the settings name (QMP_REGISTRY_DIR / QMP_DATABASE_URL), or over `registry`.

    `freeze_startup_objects` (the server's setting): once started, the objects alive then (modules, compiled
    statements, templates) are moved out of the garbage collector's reach (`gc.freeze`), so that a full
    collection during a request does not scan them: it took 60-70 ms of the overview's p95 at 10,000 versions.
    """
    settings = ui_settings or UISettings()
    holder = RegistryHolder(registry_settings, registry)
    env = _templates()
    prefect_ui = settings.prefect_ui()
    token = settings.token.get_secret_value() if settings.token else None
    app = FastAPI(
        title="Qlib Model Pipeline registry", version="1", docs_url=None, redoc_url=None,
        openapi_url="/api/openapi.json",
        description="Read-only JSON twins of the registry's web pages: the same data each page renders.",
    )
    app.state.registry = holder
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("logged_in", token is not None)
        body = env.get_template(template).render(request_path=request.url.path, prefect_ui=prefect_ui, **context)
        return HTMLResponse(body, status_code=status)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api")

    # -- access token, security headers, server timing -----------------------------------------------------

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        public = request.url.path in ("/login", "/logout") or request.url.path.startswith("/static/")
        if token is not None and not public and not auth.authorized(
                token, request.headers.get("authorization"), request.cookies.get(auth.COOKIE)):
            response: Response
            if is_api(request):
                response = JSONResponse({"detail": "missing or wrong access token (QMP_UI_TOKEN)"}, status_code=401)
            else:
                response = render(request, "login.html", status=401, next=request.url.path, failed=False,
                                  logged_in=False)
            response.headers["WWW-Authenticate"] = "Bearer"
        else:
            response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.2f}"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", status=200 if token is None else 401, next=auth.safe_next(next),
                      failed=False, logged_in=False)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        given, target = form.get("token", [""])[0], auth.safe_next(form.get("next", ["/"])[0])
        if token is None:
            return RedirectResponse(target, status_code=303)
        if not auth.token_matches(given, token):
            return render(request, "login.html", status=401, next=target, failed=True, logged_in=False)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(auth.COOKIE, auth.cookie_value(token), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    # -- errors: a page (or JSON under /api) that says what happened, never a traceback --------------------

    def error(request: Request, status: int, title: str, message: str, details: list[str] | None = None) -> Response:
        if is_api(request):
            return JSONResponse({"detail": message, **({"errors": details} if details else {})}, status_code=status)
        return render(request, "error.html", status=status, title=title, message=message, details=details or [])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed"}
        return error(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_query(request: Request, exc: RequestValidationError) -> Response:
        details = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error(request, 422, "Invalid request", "The request's parameters are not valid.", details)

    @app.exception_handler(RegistryUnavailableError)
    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: Exception) -> Response:
        return error(request, 503, "Registry database unavailable",
                     "The registry database cannot be reached right now; try again in a moment.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return error(request, 500, "Internal error", "The page could not be built; the server log has the details.")

    def not_found(what: str) -> HTTPException:
        return HTTPException(404, what)

    # -- the views ------------------------------------------------------------------------------------------

    def overview_data() -> views.OverviewView:
        return views.overview(holder.get(), settings.stale_days)

    def name_data(name: str, status: list[ModelStatus], min_: list[str], replay_id: str | None, page: int,
                  per_page: int) -> views.NameView:
        try:
            return views.name_view(holder.get(), name, statuses=status, min_metrics=_min_metrics(min_),
                                   replay_id=replay_id, page=page, per_page=per_page)
        except UnknownName:
            raise not_found(f"model name {name!r} not found in the registry") from None
        except UnknownReplay as exc:
            raise not_found(f"model name {exc.model_name!r} has no replay {exc.replay_id!r}") from None

    def version_data(name: str, version: str) -> views.VersionView:
        try:
            return views.version_view(holder.get(), name, version)
        except UnknownName:
            raise not_found(f"model name {name!r} not found in the registry") from None
        except LookupError:
            raise not_found(f"model {name!r} has no version {version!r}") from None

    def compare_data(a: str, b: str) -> views.CompareView:
        try:
            return views.compare_view(holder.get(), a, b)
        except LookupError as exc:
            raise not_found(f"model {exc.args[0]!r} not found in the registry") from None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request) -> HTMLResponse:
        return render(request, "overview.html", view=overview_data())

    @app.get("/api/overview", response_model=views.OverviewView, tags=["pages"])
    def overview_api() -> views.OverviewView:
        """One row per model name: production, newest version, approvals waiting, data age, stale badges."""
        return overview_data()

    @app.get("/models/{name}", response_class=HTMLResponse, include_in_schema=False)
    def name_page(request: Request, name: str, status: Status = [], min_: MinMetric = [],  # noqa: B006
                  replay_id: ReplayId = None, page: Page = 1, per_page: PerPage = 50) -> HTMLResponse:
        view = name_data(name, status, min_, replay_id, page, per_page)
        return render(request, "model.html", view=view, charts=views.metric_charts(view),
                      query=str(request.url.query), statuses=STATUSES)

    @app.get("/api/models/{name}", response_model=views.NameView, tags=["pages"])
    def name_api(name: str, status: Status = [], min_: MinMetric = [],  # noqa: B006
                 replay_id: ReplayId = None, page: Page = 1, per_page: PerPage = 50) -> views.NameView:
        """A page of a name's live versions, or of one of its rolling replays' (`replay_id`), filtered like
        `qmp models list`, with chart points, history, the name's replays and its pending approvals."""
        return name_data(name, status, min_, replay_id, page, per_page)

    @app.get("/models/{name}/versions/{version}", response_class=HTMLResponse, include_in_schema=False)
    def version_page(request: Request, name: str, version: str) -> HTMLResponse:
        view = version_data(name, version)
        charts = {key: views.series_chart(key, series, view.version.info.model_id)
                  for key, series in view.series.items() if series is not None}
        return render(request, "version.html", view=view, charts=charts, titles=views.SERIES_TITLES)

    @app.get("/api/models/{name}/versions/{version}", response_model=views.VersionView, tags=["pages"])
    def version_api(name: str, version: str) -> views.VersionView:
        """One version: metrics, hyperparameters, dataset, artifact, recorder, daily IC and excess return."""
        return version_data(name, version)

    @app.get("/versions/{model_id}", include_in_schema=False)
    def version_by_id(model_id: str) -> Response:
        """A version's page by its model id (the links in Prefect's artifacts carry ids)."""
        try:
            info = holder.get().get_model_info(model_id)
        except ModelNotFoundError:
            raise not_found(f"model {model_id!r} not found in the registry") from None
        return RedirectResponse(f"/models/{quote(info.model_name, safe='')}/versions/{quote(info.version, safe='')}",
                                status_code=303)

    @app.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(request: Request, a: ModelId, b: ModelId) -> HTMLResponse:
        view = compare_data(a, b)
        return render(request, "compare.html", view=view, cum_chart=views.compare_chart(view))

    @app.get("/api/compare", response_model=views.CompareView, tags=["pages"])
    def compare_api(a: ModelId, b: ModelId) -> views.CompareView:
        """Two versions: metrics with differences (b minus a), hyperparameter and dataset diffs, both curves."""
        return compare_data(a, b)

    @app.get("/approvals", response_class=HTMLResponse, include_in_schema=False)
    def approvals_page(request: Request) -> HTMLResponse:
        return render(request, "approvals.html", view=views.approvals_view(holder.get(), prefect_ui))

    @app.get("/api/approvals", response_model=views.ApprovalsView, tags=["pages"])
    def approvals_api() -> views.ApprovalsView:
        """Candidates waiting for a person, each compared with production, with its Resume link."""
        return views.approvals_view(holder.get(), prefect_ui)

    @app.on_event("startup")
    def freeze_objects() -> None:
        if freeze_startup_objects:
            gc.collect()
            gc.freeze()

    @app.on_event("shutdown")
    def close_registry() -> None:
        holder.close()

    app.state.started_at = datetime.now(UTC)
    return app
