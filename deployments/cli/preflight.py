"""Checks and no-ops answered before a flow run or a temporary Prefect server is started.

`qmp retrain` and `qmp predict` without `PREFECT_API_URL` make Prefect start a temporary local API, which
takes tens of seconds on a busy machine: bad input (the workflow, its data directory, a window that does not
fit the calendar) is refused here, and a run that would do nothing (no new data, nothing to predict) is
answered here, from the registry and the data calendar alone.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from deployments.cli.console import err_console
from deployments.cli.server import DEFAULT_PORT, api_url
from flows.options import RetrainOptions, WorkflowSource
from registry import ModelRegistry
from registry.settings import Settings, load_settings
from registry.store.db import sqlite_url_for

LOCAL_SERVER_HINT = (
    "PREFECT_API_URL is not set: Prefect starts a temporary local API for this command (tens of seconds). "
    "Keep one running instead: `qmp server` in another terminal, then "
    f"`export PREFECT_API_URL={api_url(DEFAULT_PORT)}` here"
)


def hint_local_server() -> None:
    """Say once, on stderr, how to skip the temporary server's start-up wait."""
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("QMP_HINTED_LOCAL_SERVER"):
        os.environ["QMP_HINTED_LOCAL_SERVER"] = "1"  # worker processes inherit it: one hint per command
        err_console.print(f"[dim]{LOCAL_SERVER_HINT}[/]", highlight=False, soft_wrap=True)


def _registry_if_it_exists(settings: Settings) -> ModelRegistry | None:
    if settings.database_url is None:
        database = Path(sqlite_url_for(settings.registry_dir.expanduser().resolve()).removeprefix("sqlite:///"))
        if not database.exists():
            return None
    return ModelRegistry.from_settings(settings)


def retrain_no_op(workflow: WorkflowSource, model_name: str, options: RetrainOptions) -> str | None:
    """The no-new-data gate's message when this run would train nothing; refuses bad input first (the
    workflow, its data directory, a window longer than the calendar) with one-line errors."""
    import tasks.core.qlib.session  # noqa: F401  (sets Qlib's logging up before the workflow is read)
    from tasks.core.windows.schedule import previous_on_same_data, resolve_run

    settings = load_settings()
    run = resolve_run(workflow.load(), options.windows, qlib_settings=settings)
    registry = None if options.force else _registry_if_it_exists(settings)
    if registry is None:
        return None
    with registry:
        previous = previous_on_same_data(registry, model_name, run)
    if previous is None:
        return None
    return (f"no new data since {run.data_version.calendar_end.isoformat()}: nothing to train "
            f"({previous.model_id} was trained on data version {run.data_version})")


def predict_no_op(model_name: str | None, provider_uri: Path | None, explicit_range: bool) -> str | None:
    """"Nothing to predict" when no name has a production model, or every name has scores up to the data
    calendar's last day; None when the flow has work (or an explicit range) to look at."""
    from tasks.core.data.version import data_version
    from tasks.core.predictions.pending import NOTHING_TO_PREDICT, production_names

    settings = load_settings()
    registry = _registry_if_it_exists(settings)
    if registry is None:
        return f"{NOTHING_TO_PREDICT}: no registry at {settings.registry_dir} yet"
    with registry:
        names = [model_name] if model_name else production_names(registry)
        if not names:
            return f"{NOTHING_TO_PREDICT}: no model name has a production model"
        if explicit_range or any(registry.get_production_model(name) is None for name in names):
            return None  # the flow reports the range or the missing production model per name
        data_dir = provider_uri if provider_uri is not None else settings.provider_uri
        if data_dir is None:  # scoring's one-line error; only this path loads Qlib
            from tasks.core.qlib.scoring import resolve_provider_uri

            data_dir = resolve_provider_uri(None, settings)
        calendar_end = data_version(data_dir).calendar_end
        last_stored: dict[str, date | None] = {name: registry.last_prediction_date(name) for name in names}
    if all(day is not None and day >= calendar_end for day in last_stored.values()):
        return "; ".join(f"{name}: {NOTHING_TO_PREDICT} (last stored prediction {day}, data calendar has no later day)"
                         for name, day in last_stored.items())
    return None
