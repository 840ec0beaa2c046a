"""Prefect task for the ingest flow: one call into ``tasks.core.data.ingest`` and the data version's record."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from registry.settings import load_settings
from tasks.core.data.ingest.operation import IngestOptions
from tasks.core.data.ingest.record import ingest_recorded
from tasks.core.data.ingest.sources import parse_source
from tasks.core.lifecycle import open_registry
from tasks.registry_steps import current_flow_run_id


class IngestOutcome(BaseModel):
    """One ingest as the flow returns it."""

    data_dir: str
    source: str
    days_added: int
    rows_added: int
    wrote: bool  # new days, applied corrections or a recovery changed the directory
    first_day: date | None
    calendar_end: date | None
    corrections: dict[str, Any]
    validation: list[str]
    checks: dict[str, Any]
    recovery: str | None
    data_version: str | None
    record_id: int | None


# Not retried: a failure is the source or the data (and the operation is idempotent: a re-run adds what is new).
@task(name="ingest source", cache_policy=NO_CACHE)
def ingest_source(source: str, data_dir: Path, query: str | None, options: IngestOptions) -> IngestOutcome:
    """Ingest the source's new rows into ``data_dir`` and record the data version in the registry."""
    result, record = ingest_recorded(lambda: open_registry(load_settings()), parse_source(source, query), data_dir,
                                     options, current_flow_run_id())
    return IngestOutcome(
        data_dir=record.data_dir if record else str(Path(data_dir).resolve()), source=result.source,
        days_added=result.days_added, rows_added=result.rows_added, wrote=result.wrote or bool(result.recovery),
        first_day=result.first_day,
        calendar_end=result.calendar_end, corrections=result.corrections, validation=result.validation.lines(),
        checks=result.validation.summary()["checks"], recovery=result.recovery,
        data_version=record.version if record else result.data_version, record_id=record.id if record else None,
    )
