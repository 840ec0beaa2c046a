"""The ingest flow: a source's new rows validated against the exchange calendar, added to the Qlib data directory,
recorded as a data version, announced as ``qmp.data.updated`` (the rolling retrain and predict-daily can run on it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from registry.settings import load_settings
from tasks.core.data.ingest.operation import IngestOptions
from tasks.core.errors import PipelineInputError
from tasks.events import emit_data_updated
from tasks.ingest_steps import IngestOutcome, ingest_source


def _run_name() -> str:
    return f"ingest-{datetime.now(UTC):%Y-%m-%d-%H%M%S}"


@flow(name="ingest", flow_run_name=_run_name, log_prints=True)
def ingest(
    source: Annotated[str, Field(title="Source", description="Folder of per-instrument files, a CSV/Parquet table, or a SQLAlchemy URL.")],
    data_dir: Annotated[str | None, Field(title="Qlib data directory", description="Default: QMP_PROVIDER_URI.")] = None,
    query: Annotated[str | None, Field(title="SQL query", description="For a database source; ':after' is the last stored day.")] = None,
    region: Annotated[Literal["cn", "us"], Field(title="Region")] = "cn",
    calendar: Annotated[str | None, Field(title="Calendar", description="Exchange code or 'synthetic'; default: the directory's, else the region's.")] = None,
    holidays: Annotated[str | None, Field(title="Holiday file", description="Closed days past exchange_calendars' last session (docs/ingest.md).")] = None,
    allow_missing_days: Annotated[bool, Field(title="Allow missing trading days")] = False,
    corrections: Annotated[Literal["refuse", "apply", "skip"], Field(title="Corrections")] = "refuse",
) -> IngestOutcome:
    """Ingest the new days of ``source``; emit ``qmp.data.updated`` when days were added."""
    directory = data_dir or load_settings().provider_uri
    if directory is None:
        raise PipelineInputError("no data directory: give data_dir or set QMP_PROVIDER_URI")
    options = IngestOptions(region=region, calendar=calendar, holidays=Path(holidays).expanduser() if holidays else None,
                            allow_missing_days=allow_missing_days, corrections=corrections)
    outcome = ingest_source(source, Path(directory).expanduser(), query, options)
    publish_validation(outcome)
    logger = get_run_logger()
    for line in outcome.validation:
        logger.info(line)
    logger.info(f"{outcome.days_added} days, {outcome.rows_added} rows added to {outcome.data_dir}; "
                f"data version {outcome.data_version}")
    if outcome.days_added and outcome.data_version:
        emit_data_updated(outcome.data_dir, str(outcome.calendar_end), outcome.data_version, outcome.days_added)
    return outcome


def publish_validation(outcome: IngestOutcome) -> None:
    """The validation report as a table artifact: one row per check."""
    rows = [{"check": name, "level": check["level"], "count": check["count"], "first": "; ".join(check["examples"])}
            for name, check in outcome.checks.items()]
    create_table_artifact(key="ingest-validation", table=rows,
                          description=f"{outcome.data_dir}: {outcome.days_added} days added, data version "
                                      f"{outcome.data_version}")
