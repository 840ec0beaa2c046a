"""The overview: one row per model name."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from deployments.ui import views
from deployments.ui.context import Context, UIContext

router = APIRouter()


def overview_data(ui: UIContext) -> views.OverviewView:
    return views.overview(ui.registry.get(), ui.settings.stale_days)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def overview_page(request: Request, ui: Context) -> HTMLResponse:
    return ui.render(request, "overview.html", view=overview_data(ui),
                     data_versions=ui.registry.get().newest_data_versions())


@router.get("/api/overview", response_model=views.OverviewView, tags=["pages"])
def overview_api(ui: Context) -> views.OverviewView:
    """One row per model name: production, newest version, approvals waiting, data age, stale badges."""
    return overview_data(ui)
