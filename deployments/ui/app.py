"""The web app: HTML pages and their JSON twins under /api, read-only, over the registry of the settings.

Actions (promote, roll back, approve) are not here: the pages link to the Prefect deployments and to the paused
run's Resume form, so every decision keeps its one recorded path. The routes live in `deployments.ui.routes`,
one router per page group.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from deployments.ui.access import guard
from deployments.ui.context import UIContext
from deployments.ui.errors import add_error_handlers
from deployments.ui.registry_holder import RegistryHolder
from deployments.ui.rendering import templates
from deployments.ui.routes import ROUTERS
from deployments.ui.settings import UISettings
from registry import ModelRegistry
from registry.settings import Settings

HERE = Path(__file__).parent


def create_app(
    ui_settings: UISettings | None = None, registry_settings: Settings | None = None,
    registry: ModelRegistry | None = None, *, freeze_startup_objects: bool = False,
) -> FastAPI:
    """The app over the registry the settings name (QMP_REGISTRY_DIR / QMP_DATABASE_URL), or over `registry`.

    `freeze_startup_objects` (the server's setting): once started, the objects alive then (modules, compiled
    statements, templates) are moved out of the garbage collector's reach (`gc.freeze`), so that a full
    collection during a request does not scan them (a large share of the overview's p95 on a big registry).
    """
    holder = RegistryHolder(registry_settings, registry)
    app = FastAPI(
        title="Qlib Model Pipeline registry", version="1", docs_url=None, redoc_url=None,
        openapi_url="/api/openapi.json", lifespan=_lifespan,
        description="Read-only JSON twins of the registry's web pages: the same data each page renders.",
    )
    app.state.ui = UIContext.build(ui_settings or UISettings(), holder, templates())
    app.state.registry = holder
    app.state.freeze_startup_objects = freeze_startup_objects
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.middleware("http")(guard)
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.state.started_at = datetime.now(UTC)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.freeze_startup_objects:
        gc.collect()
        gc.freeze()
    yield
    app.state.ui.registry.close()
