"""An ingest's data version in the registry: recorded when the ingest (or the recovery it ran) changed the data,
or when the registry does not yet know the directory's current version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from registry import ModelRegistry
from registry.data_versions import DataVersionRecord
from tasks.core.data.ingest.operation import IngestOptions, IngestResult, ingest
from tasks.core.data.ingest.sources import Source
from tasks.core.data.version import data_version


def data_dir_key(out: Path) -> str:
    """How a data directory is named in the registry: its absolute path."""
    return str(Path(out).expanduser().resolve())


def record_ingest(registry: ModelRegistry, result: IngestResult, flow_run_id: str | None = None
                  ) -> DataVersionRecord | None:
    """Record ``result``'s data version; None when the data is unchanged and already recorded."""
    key = data_dir_key(result.out)
    current = data_version(result.out)
    newest = registry.data_versions(key, limit=1)
    if not result.wrote and not result.recovery and newest and newest[0].fingerprint == current.fingerprint:
        return None
    return registry.record_data_version(DataVersionRecord(
        data_dir=key, calendar_end=current.calendar_end, fingerprint=current.fingerprint,
        rows_added=result.rows_added, days_added=result.days_added, corrections=result.corrections,
        validation={**result.validation.summary(), "recovery": result.recovery}, source=result.source,
        flow_run_id=flow_run_id,
    ))


def ingest_recorded(registry: Callable[[], ModelRegistry], source: Source, out: Path,
                    options: IngestOptions | None = None, flow_run_id: str | None = None
                    ) -> tuple[IngestResult, DataVersionRecord | None]:
    """Ingest ``source`` into ``out`` and record the data version in ``registry()`` (opened only when the ingest has
    succeeded) before the directory's ingest lock is released: a concurrent ingest that finds nothing new then also
    finds this one's record, and records nothing of its own."""
    recorded: list[DataVersionRecord | None] = []
    result = ingest(source, out, options,
                    then=lambda done: recorded.append(record_ingest(registry(), done, flow_run_id)))
    return result, recorded[0]
