"""An ingest's data version in the registry: recorded when the ingest (or the recovery it ran) changed the data,
or when the registry does not yet know the directory's current version."""

from __future__ import annotations

from pathlib import Path

from registry import ModelRegistry
from registry.data_versions import DataVersionRecord
from tasks.core.data.ingest.operation import IngestResult
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
