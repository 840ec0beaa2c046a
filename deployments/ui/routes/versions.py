"""One version's page, and the redirect from a model id to it."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deployments.ui import views
from deployments.ui.context import Context, UIContext
from deployments.ui.errors import not_found
from registry import ModelNotFoundError
from registry.views.browse import UnknownName

router = APIRouter()


def version_data(ui: UIContext, name: str, version: str) -> views.VersionView:
    try:
        return views.version_view(ui.registry.get(), name, version)
    except UnknownName:
        raise not_found(f"model name {name!r} not found in the registry") from None
    except LookupError:
        raise not_found(f"model {name!r} has no version {version!r}") from None


@router.get("/models/{name}/versions/{version}", response_class=HTMLResponse, include_in_schema=False)
def version_page(request: Request, ui: Context, name: str, version: str) -> HTMLResponse:
    view = version_data(ui, name, version)
    charts = {key: views.series_chart(key, series, view.version.info.model_id)
              for key, series in view.series.items() if series is not None}
    return ui.render(request, "version.html", view=view, charts=charts, titles=views.SERIES_TITLES)


@router.get("/api/models/{name}/versions/{version}", response_model=views.VersionView, tags=["pages"])
def version_api(ui: Context, name: str, version: str) -> views.VersionView:
    """One version: metrics, hyperparameters, dataset, artifact, recorder, daily IC and excess return."""
    return version_data(ui, name, version)


@router.get("/versions/{model_id}", include_in_schema=False)
def version_by_id(ui: Context, model_id: str) -> Response:
    """A version's page by its model id (the links in Prefect's artifacts carry ids)."""
    try:
        info = ui.registry.get().get_model_info(model_id)
    except ModelNotFoundError:
        raise not_found(f"model {model_id!r} not found in the registry") from None
    return RedirectResponse(f"/models/{quote(info.model_name, safe='')}/versions/{quote(info.version, safe='')}",
                            status_code=303)
