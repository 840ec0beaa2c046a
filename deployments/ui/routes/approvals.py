"""The candidates waiting for a person's decision, each with its Resume link in Prefect's UI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from deployments.ui import views
from deployments.ui.context import Context
from deployments.ui.directions import directions_of

router = APIRouter()


@router.get("/approvals", response_class=HTMLResponse, include_in_schema=False)
def approvals_page(request: Request, ui: Context) -> HTMLResponse:
    registry = ui.registry.get()
    return ui.render(request, "approvals.html", view=views.approvals_view(registry, ui.prefect_ui),
                     directions=directions_of(registry))


@router.get("/api/approvals", response_model=views.ApprovalsView, tags=["pages"])
def approvals_api(ui: Context) -> views.ApprovalsView:
    """Candidates waiting for a person, each compared with production, with its Resume link."""
    return views.approvals_view(ui.registry.get(), ui.prefect_ui)
