"""A data directory's data versions, with the one a model's data version links to (`registry.views.data`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from deployments.ui.context import Context, UIContext
from deployments.ui.errors import not_found
from registry.errors import InvalidArgumentError
from registry.views.data import DataPage, UnknownDataVersion, data_page

router = APIRouter()

DataDir = Annotated[str | None, Query(alias="dir", min_length=1, max_length=1024,
                                      description="A data directory, as the registry names it (its absolute path).")]
DataVersion = Annotated[str | None, Query(min_length=1, max_length=200,
                                          description="A data version, YYYY-MM-DD/<fingerprint>, as models record it.")]


def data_data(ui: UIContext, data_dir: str | None, version: str | None) -> DataPage:
    try:
        return data_page(ui.registry.get(), data_dir=data_dir, version=version)
    except InvalidArgumentError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "version" if version else "dir"),
                                       "input": version, "msg": str(exc)}]) from None
    except UnknownDataVersion as exc:
        raise not_found(str(exc)) from None


@router.get("/data", response_class=HTMLResponse, include_in_schema=False)
def data_versions_page(request: Request, ui: Context, data_dir: DataDir = None,
                       version: DataVersion = None) -> HTMLResponse:
    return ui.render(request, "data.html", view=data_data(ui, data_dir, version))


@router.get("/api/data", response_model=DataPage, tags=["pages"])
def data_versions_api(ui: Context, data_dir: DataDir = None, version: DataVersion = None) -> DataPage:
    """A data directory's data versions (`dir`), or the directory of one data version (`version`) with that one
    as `linked`: what each ingest added, its corrections and its validation summary."""
    return data_data(ui, data_dir, version)
