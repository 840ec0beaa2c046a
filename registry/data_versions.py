"""Data versions: one record per ingest into a Qlib data directory, so a model's data version can be traced to
the ingest that produced it (what was added, which corrections, what validation reported)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DataVersionRecord(BaseModel):
    """One ingest's record; ``version`` is the data version string models are tagged with."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    data_dir: str
    calendar_end: date | None
    fingerprint: str
    rows_added: int = 0
    days_added: int = 0
    corrections: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    source: str
    flow_run_id: str | None = None
    created_at: datetime | None = None

    @property
    def version(self) -> str:
        return f"{self.calendar_end.isoformat() if self.calendar_end else ''}/{self.fingerprint}"

    def row(self, now: datetime) -> dict[str, Any]:
        """The table row (without the id the database allocates)."""
        return {**self.model_dump(exclude={"id"}), "created_at": self.created_at or now}
