"""Live metrics: a stored prediction day scored against the label once the market has made it.

A day's live metrics are the evaluation's signal metrics on that day alone (Pearson IC and Rank IC of the
stored scores with the model's raw label), the number of instruments with both, and the signal return: the
mean label of the ``top_k`` best-scored instruments minus the mean label of all of them.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, field_validator


class LiveScore(BaseModel):
    """One day's live metrics as the predict flow computes them (None where undefined)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_id: str
    trading_date: date
    ic: float | None
    rank_ic: float | None
    instruments: int
    signal_return: float | None
    top_k: int

    @field_validator("ic", "rank_ic", "signal_return", mode="before")
    @classmethod
    def _finite_or_none(cls, value: float | None) -> float | None:
        return None if value is None or not math.isfinite(float(value)) else float(value)


class LiveDay(LiveScore):
    """A stored day of live metrics."""

    model_name: str
    data_version: str
    computed_at: datetime
    flow_run_id: str | None = None


class LiveWrite(BaseModel):
    """What one write of live metrics did."""

    model_name: str
    written_days: list[date] = []
    replaced_days: list[date] = []
