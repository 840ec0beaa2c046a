"""Two versions side by side."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from deployments.ui import views
from deployments.ui.context import Context, UIContext
from deployments.ui.directions import directions_of
from deployments.ui.errors import not_found
from deployments.ui.routes.queries import ModelId

router = APIRouter()


def compare_data(ui: UIContext, a: str, b: str) -> views.CompareView:
    try:
        return views.compare_view(ui.registry.get(), a, b)
    except LookupError as exc:
        raise not_found(f"model {exc.args[0]!r} not found in the registry") from None


@router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
def compare_page(request: Request, ui: Context, a: ModelId, b: ModelId) -> HTMLResponse:
    view = compare_data(ui, a, b)
    return ui.render(request, "compare.html", view=view, cum_chart=views.compare_chart(view),
                     directions=directions_of(ui.registry.get()))


@router.get("/api/compare", response_model=views.CompareView, tags=["pages"])
def compare_api(ui: Context, a: ModelId, b: ModelId) -> views.CompareView:
    """Two versions: metrics with differences (b minus a), hyperparameter and dataset diffs, both curves."""
    return compare_data(ui, a, b)
