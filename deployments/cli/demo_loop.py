"""The demo's data loop: a week of new synthetic days ingested (the `ingest` flow, which emits `qmp.data.updated`),
then the rolling retrain and the predictions that event starts in a deployed stack, run here in that order."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployments.cli.console import console
from deployments.cli.server import DEFAULT_PORT, api_url

NEW_DAYS_SPAN = 7  # calendar days of new synthetic data: one trading week
LOOP_HINT = ("the data loop (new days ingested -> qmp.data.updated -> rolling retrain -> predictions) runs with a "
             f"Prefect server: `qmp server` in another shell, then PREFECT_API_URL={api_url(DEFAULT_PORT)} qmp demo")


def prefect_server_configured() -> bool:
    """Whether runs go to a Prefect server (PREFECT_API_URL set; the demo checked that it answers)."""
    return bool(os.environ.get("PREFECT_API_URL"))


def run_data_loop(data_dir: Path, workspace: Path, model_name: str, config: Path, seed: int,
                  step: Callable[[str, Callable[[], Any]], Any]) -> None:
    """Ingest a week of new synthetic days, retrain on rolling windows, predict the new days (``step`` times each)."""
    import pandas as pd

    from flows.ingest import ingest
    from tasks.core.data.qlib_binary import read_calendar
    from tasks.core.data.synthetic_feed import write_synthetic_feed

    until = f"{read_calendar(data_dir)[-1] + pd.Timedelta(days=NEW_DAYS_SPAN):%Y-%m-%d}"
    feed = workspace / "feed" / f"synthetic-until-{until}.parquet"
    outcome = step("new data: ingest a week of synthetic days (emits qmp.data.updated)", lambda: _ingest(
        lambda: write_synthetic_feed(data_dir, until, seed, feed), lambda: ingest(source=str(feed), data_dir=str(data_dir))))
    console.print(f"ingested {outcome.rows_added} rows over {outcome.days_added} days "
                  f"({outcome.first_day}..{outcome.calendar_end}); data version {outcome.data_version}")
    console.print("[dim]a deployed stack starts the next two runs from that event (the retrain-on-new-data and "
                  "predict-on-new-data triggers, `qmp schedules on`); the demo runs them here, in order[/]")
    step("rolling retrain on the new data", lambda: _retrain(config, model_name))
    step("predictions for the new days", lambda: _predict(model_name, outcome.first_day))


def _ingest(write_feed: Callable[[], int], run_flow: Callable[[], Any]) -> Any:
    write_feed()
    return run_flow()


def _retrain(config: Path, model_name: str) -> None:
    from deployments.cli.retrain import print_result, run_retrain
    from flows.options import DataFreshness, RetrainOptions
    from tasks.core.windows.settings import WindowSettings

    options = RetrainOptions(windows=WindowSettings.model_validate({"mode": "rolling"}),
                             freshness=DataFreshness.model_validate({"max_data_age_days": None}))
    print_result(run_retrain(config, model_name, options))


def _predict(model_name: str, first_day: Any) -> None:
    from deployments.cli.predict import predict_command

    predict_command(model_name=model_name, from_date=str(first_day))
