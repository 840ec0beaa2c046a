"""Daily series an evaluation produces, stored with the version so they outlive a purge of its model file."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from registry.errors import InvalidMetadataError
from registry.models import validate_metric_name

DAILY_IC = "daily_ic"  # Pearson IC of the predictions with the raw label, per trading day (calc_ic)
CUMULATIVE_EXCESS_RETURN = "cum_excess_return"  # summed daily excess return over the benchmark, after costs
MAX_POINTS = 20_000  # about 80 years of trading days: more is a mistake, not a long test segment


class EvaluationSeries(BaseModel):
    """One value per day; None where the value is undefined (a day on which the IC cannot be computed)."""

    model_config = ConfigDict(frozen=True)

    dates: list[date]
    values: list[float | None]

    @field_validator("values", mode="before")
    @classmethod
    def _finite_or_none(cls, values: Any) -> Any:
        if not isinstance(values, (list, tuple)):
            return values
        cleaned: list[float | None] = []
        for value in values:
            number = None if value is None else float(value)
            cleaned.append(number if number is not None and math.isfinite(number) else None)
        return cleaned

    @model_validator(mode="after")
    def _aligned(self) -> EvaluationSeries:
        if len(self.dates) != len(self.values):
            raise InvalidMetadataError(f"a series needs one value per date: {len(self.dates)} dates, "
                                       f"{len(self.values)} values")
        if len(self.dates) > MAX_POINTS:
            raise InvalidMetadataError(f"a series holds at most {MAX_POINTS} points, got {len(self.dates)}")
        if any(b <= a for a, b in zip(self.dates, self.dates[1:], strict=False)):
            raise InvalidMetadataError("a series' dates must be strictly increasing")
        return self

    def points(self) -> dict[str, list[Any]]:
        """The stored JSON: ISO dates and numbers (null where undefined)."""
        return {"dates": [d.isoformat() for d in self.dates], "values": list(self.values)}


def validate_series(series: dict[str, EvaluationSeries]) -> dict[str, EvaluationSeries]:
    """Series names follow the metric-name rule; values are EvaluationSeries."""
    for name, value in series.items():
        validate_metric_name(name)
        if not isinstance(value, EvaluationSeries):
            raise InvalidMetadataError(f"series {name!r} is not an EvaluationSeries: {type(value).__name__}")
    return series
