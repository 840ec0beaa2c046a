"""The ingest flow: a source's new rows validated against the exchange calendar, added to the Qlib data directory,
recorded as a data version, announced as ``qmp.data.updated`` (the rolling retrain and predict-daily can run on it).

Without a source it reads the workspace's feed (``QMP_INGEST_SOURCE``, else ``$QMP_HOME/incoming``), as the
``ingest-daily`` deployment does: a feed folder that does not exist yet means nothing is configured, and the run
completes saying where to put files; a source that is given (parameter or setting) and missing fails the run in
one line. A run with nothing new completes with one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State
from pydantic import Field

from registry.settings import default_ingest_folder, load_settings
from tasks.core.data.ingest.operation import IngestOptions
from tasks.core.data.ingest.sources import parse_source
from tasks.core.errors import PipelineInputError
from tasks.events import emit_data_updated
from tasks.ingest_steps import IngestOutcome, ingest_source


def _run_name() -> str:
    return f"ingest-{datetime.now(UTC):%Y-%m-%d-%H%M%S}"


@flow(name="ingest", flow_run_name=_run_name, log_prints=True)
def ingest(
    source: Annotated[str | None, Field(title="Source", description="Folder of per-instrument files, a CSV/Parquet table, or a SQLAlchemy URL. Default: QMP_INGEST_SOURCE, else the workspace's feed folder $QMP_HOME/incoming.")] = None,
    data_dir: Annotated[str | None, Field(title="Qlib data directory", description="Default: QMP_PROVIDER_URI.")] = None,
    query: Annotated[str | None, Field(title="SQL query", description="For a database source; ':after' is the last stored day.")] = None,
    region: Annotated[Literal["cn", "us"], Field(title="Region")] = "cn",
    calendar: Annotated[str | None, Field(title="Calendar", description="Exchange code or 'synthetic'; default: the directory's, else the region's.")] = None,
    holidays: Annotated[str | None, Field(title="Holiday file", description="Closed days past exchange_calendars' last session (docs/ingest.md).")] = None,
    allow_missing_days: Annotated[bool, Field(title="Allow missing trading days")] = False,
    corrections: Annotated[Literal["refuse", "apply", "skip"], Field(title="Corrections")] = "refuse",
) -> State[IngestOutcome | None]:
    """Ingest the new days of ``source``; emit ``qmp.data.updated`` when days were added."""
    logger = get_run_logger()
    settings = load_settings()
    feed = source or settings.ingest_source
    if not feed:
        folder = default_ingest_folder()
        if not folder.exists():
            message = (f"no feed yet: put per-instrument CSV/Parquet files in {folder} (or set QMP_INGEST_SOURCE, "
                       "or give the source parameter); nothing ingested")
            logger.info(message)
            return Completed(message=message, data=None)
        feed = str(folder)
    directory = data_dir or settings.provider_uri
    try:
        parse_source(feed, query)  # a missing or unreadable source: one line, before any task runs
        if directory is None:
            raise PipelineInputError("no data directory: give data_dir or set QMP_PROVIDER_URI")
    except PipelineInputError as exc:
        logger.error(str(exc))
        return Failed(message=str(exc), data=None)
    options = IngestOptions(region=region, calendar=calendar, holidays=Path(holidays).expanduser() if holidays else None,
                            allow_missing_days=allow_missing_days, corrections=corrections)
    outcome = ingest_source(feed, Path(directory).expanduser(), query, options)
    if not outcome.wrote and not outcome.validation:
        message = f"nothing new in {feed}: no trading days after {outcome.calendar_end} ({outcome.data_dir} unchanged)"
        logger.info(message)
        return Completed(message=message, data=outcome)
    publish_validation(outcome)
    for line in outcome.validation:
        logger.info(line)
    message = (f"{outcome.days_added} days, {outcome.rows_added} rows added to {outcome.data_dir}; "
               f"data version {outcome.data_version}")
    logger.info(message)
    if outcome.days_added and outcome.data_version:
        emit_data_updated(outcome.data_dir, str(outcome.calendar_end), outcome.data_version, outcome.days_added)
    return Completed(message=message, data=outcome)


def publish_validation(outcome: IngestOutcome) -> None:
    """The validation report as a table artifact: one row per check."""
    rows = [{"check": name, "level": check["level"], "count": check["count"], "first": "; ".join(check["examples"])}
            for name, check in outcome.checks.items()]
    create_table_artifact(key="ingest-validation", table=rows,
                          description=f"{outcome.data_dir}: {outcome.days_added} days added, data version "
                                      f"{outcome.data_version}")
