"""A model name's page: its live versions, or one of its rolling replays', filtered and paged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from deployments.ui import views
from deployments.ui.context import Context, UIContext
from deployments.ui.errors import not_found
from deployments.ui.routes.queries import STATUSES, MinMetric, Page, PerPage, ReplayId, Status, min_metrics
from registry import ModelStatus
from registry.views.browse import UnknownName, UnknownReplay

router = APIRouter()


def name_data(ui: UIContext, name: str, status: list[ModelStatus], min_: list[str], replay_id: str | None,
              page: int, per_page: int) -> views.NameView:
    try:
        return views.name_view(ui.registry.get(), name, statuses=status, min_metrics=min_metrics(min_),
                               replay_id=replay_id, page=page, per_page=per_page)
    except UnknownName:
        raise not_found(f"model name {name!r} not found in the registry") from None
    except UnknownReplay as exc:
        raise not_found(f"model name {exc.model_name!r} has no replay {exc.replay_id!r}") from None


@router.get("/models/{name}", response_class=HTMLResponse, include_in_schema=False)
def name_page(request: Request, ui: Context, name: str, status: Status = [], min_: MinMetric = [],  # noqa: B006
              replay_id: ReplayId = None, page: Page = 1, per_page: PerPage = 50) -> HTMLResponse:
    view = name_data(ui, name, status, min_, replay_id, page, per_page)
    return ui.render(request, "model.html", view=view, charts=views.metric_charts(view),
                     query=str(request.url.query), statuses=STATUSES)


@router.get("/api/models/{name}", response_model=views.NameView, tags=["pages"])
def name_api(ui: Context, name: str, status: Status = [], min_: MinMetric = [],  # noqa: B006
             replay_id: ReplayId = None, page: Page = 1, per_page: PerPage = 50) -> views.NameView:
    """A page of a name's live versions, or of one of its rolling replays' (`replay_id`), filtered like
    `qmp models list`, with chart points, history, the name's replays and its pending approvals."""
    return name_data(ui, name, status, min_, replay_id, page, per_page)
