"""`qmp data ingest` and `qmp data history`: one ingest printed with its validation report, recorded in the
registry, announced as `qmp.data.updated`; a directory's data versions listed."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from deployments.cli.console import console, err_console
from deployments.cli.registry_access import existing_registry


def run_ingest(source: str, into: Path, *, query: str | None, region: str, calendar: str | None,
               holidays: Path | None, allow_missing_days: bool, corrections: str, universe: list[str],
               benchmark: str) -> None:
    """Ingest, print the report, record the data version and emit the event when days were added."""
    from registry.settings import load_settings
    from tasks.core.data.ingest.operation import IngestOptions
    from tasks.core.data.ingest.record import ingest_recorded
    from tasks.core.data.ingest.sources import parse_source
    from tasks.core.lifecycle import open_registry
    from tasks.events import emit_data_updated

    options = IngestOptions(region=region, calendar=calendar, holidays=holidays, allow_missing_days=allow_missing_days,
                            corrections=corrections, universes=tuple(universe), benchmark=benchmark)
    result, record = ingest_recorded(lambda: open_registry(load_settings()), parse_source(source, query), into, options)
    if result.recovery:
        err_console.print(f"[yellow]recovered:[/] {result.recovery}", highlight=False)
    for line in result.validation.lines():
        (err_console if line.startswith("warning") else console).print(line, highlight=False)
    if not result.days_added:
        skipped = f"; {result.skipped_rows} corrections skipped" if result.skipped_rows else ""
        console.print(f"{into}: no new trading days after {result.previous_end}{skipped}")
    else:
        console.print(
            f"ingested {result.rows_added} rows over {result.days_added} days ({result.first_day}..{result.calendar_end})"
            f" for {result.instruments} instruments ({result.new_instruments} new) into {into}; calendar "
            f"{result.calendar}; corrections {result.corrections['mode']}: {result.corrections['rows']}"
        )
    if record is not None:
        console.print(f"data version {record.version} (record {record.id})")
        if result.days_added:
            emit_data_updated(record.data_dir, str(record.calendar_end), record.version, result.days_added)


def show_history(data_dir: Path, limit: int, as_json: bool = False) -> None:
    """Print ``data_dir``'s data versions, newest first (a table, or JSON)."""
    from tasks.core.data.ingest.record import data_dir_key

    records = existing_registry().data_versions(data_dir_key(data_dir), limit=limit)
    if as_json:
        console.print_json(json.dumps([record.model_dump(mode="json") for record in records]))
        return
    if not records:
        console.print(f"{data_dir}: no data versions recorded (run `qmp data ingest SOURCE --into {data_dir}`)")
        return
    table = Table("id", "time (UTC)", "calendar end", "fingerprint", "days", "rows", "corrections", "warnings",
                  "source")
    for record in records:
        warnings = sum(check["count"] for check in record.validation.get("checks", {}).values()
                       if check["level"] == "warning")
        created = f"{record.created_at:%Y-%m-%d %H:%M:%S}" if record.created_at else ""
        table.add_row(str(record.id), created, str(record.calendar_end), record.fingerprint, str(record.days_added),
                      str(record.rows_added), f"{record.corrections.get('mode', '')} {record.corrections.get('rows', 0)}",
                      str(warnings), record.source)
    console.print(table)
