"""The pages' query parameters and the `min=METRIC:VALUE` bounds' parsing.

Module level: FastAPI resolves a route's annotations in its module's namespace, so the routes import these names.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.exceptions import RequestValidationError

from registry import ModelStatus
from registry.models import validate_metric_name
from registry.replays import REPLAY_ID_PATTERN

STATUSES = [s.value for s in ModelStatus]
MAX_PER_PAGE = 200

Status = Annotated[list[ModelStatus], Query(description=f"Only these statuses ({', '.join(STATUSES)}).")]
MinMetric = Annotated[list[str], Query(alias="min", description="METRIC:VALUE lower bound, e.g. ic_mean:0.02.")]
ReplayId = Annotated[str | None, Query(pattern=REPLAY_ID_PATTERN.pattern,
                                       description="The versions of this rolling replay of the name.")]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Versions per page.")]
ModelId = Annotated[str, Query(min_length=1, max_length=200, description="A model id, `{name}_v{version}`.")]


def min_metrics(values: list[str]) -> dict[str, float]:
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
