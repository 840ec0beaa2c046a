"""Ingest end to end: a real Prefect server, a process work pool and worker, `qmp data ingest` as a separate
process. New data starts exactly one retrain run and the predictions for the new days, with no schedule involved."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterStartTime,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from registry import ModelFilter, ModelRegistry
from tasks.core.data.ingest.record import data_dir_key
from tasks.core.data.qlib_binary import read_calendar
from tasks.core.data.synthetic_feed import write_synthetic_feed
from tests.e2e.stack import LINEAR, ROOT
from tests.e2e.stack import wait_for as _wait_for
from tests.e2e.test_real_server import FRESH_ENOUGH

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]
QMP = [sys.executable, "-c", "from deployments.cli import main; main()"]
RETRAIN = "retrain-lgbm-alpha158"
NAME = "e2e_ingest"


def _qmp(stack: dict[str, Any], *args: str) -> str:
    done = subprocess.run([*QMP, *args], env=stack["env"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"qmp {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _retrain_runs_since(since: datetime) -> list[Any]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[RETRAIN])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
        )
        pending = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[RETRAIN])))
    started = {run.id for run in runs}
    found = runs + [run for run in pending if run.id not in started and run.created and run.created >= since]
    return [run for run in found if not run.auto_scheduled]  # `qmp schedules on` also schedules tomorrow's runs


def _point_retrain_at_the_test_model() -> None:
    """The team's configuration: the retrain deployment's model (a fast linear one; synthetic data is old)."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"retrain/{RETRAIN}")
        parameters = {**deployment.parameters, "model_name": NAME, "workflow": LINEAR, **FRESH_ENOUGH}
        client.update_deployment(deployment.id, DeploymentUpdate(parameters=parameters))


def test_one_ingest_starts_one_retrain_and_the_predictions_for_the_new_days(stack: dict[str, Any], tmp_path: Path
                                                                            ) -> None:
    data = Path(stack["env"]["QMP_PROVIDER_URI"])
    first = run_deployment(f"retrain/{RETRAIN}", timeout=0,
                           parameters={"model_name": NAME, "workflow": LINEAR, **FRESH_ENOUGH})
    _wait_for(first.id, {StateType.COMPLETED}, 600, stack["logs"])
    registry = ModelRegistry(stack["registry_dir"], stack["database_url"])
    assert registry.get_production_model(NAME) is not None
    _point_retrain_at_the_test_model()
    switched = _qmp(stack, "schedules", "on", RETRAIN, "predict-daily")
    try:
        assert "trigger 'retrain-on-new-data'" in switched and "trigger 'predict-on-new-data'" in switched
        time.sleep(5)  # the server's trigger service loads the enabled automations
        _ingest_starts_one_retrain_and_predictions(stack, registry, data, tmp_path)
    finally:  # the session's stack is shared: leave its schedules and triggers as the other tests expect
        _qmp(stack, "schedules", "off", RETRAIN, "predict-daily")
        registry.close()


def _ingest_starts_one_retrain_and_predictions(
    stack: dict[str, Any], registry: ModelRegistry, data: Path, tmp_path: Path
) -> None:

    feed = tmp_path / "feed.parquet"
    write_synthetic_feed(data, "2023-01-10", 5, feed)
    since = datetime.now(UTC)
    printed = _qmp(stack, "data", "ingest", str(feed), "--into", str(data))
    assert "data version" in printed, printed
    new_end = read_calendar(data)[-1].date()
    (record,) = registry.data_versions(data_dir_key(data))
    assert record.calendar_end == new_end and record.days_added > 0

    deadline = time.monotonic() + 180
    while not (runs := _retrain_runs_since(since)):
        assert time.monotonic() < deadline, "no retrain run started within 180 s of the ingest"
        time.sleep(3)
    _wait_for(runs[0].id, {StateType.COMPLETED}, 900, stack["logs"])
    assert len(registry.list_models(ModelFilter(model_name=NAME))) == 2  # trained on the new days
    deadline = time.monotonic() + 600
    while not registry.predictions(NAME, on=new_end):
        assert time.monotonic() < deadline, f"no predictions for {new_end} within 600 s of the ingest"
        time.sleep(5)
    assert len(_retrain_runs_since(since)) == 1  # one event, one retrain


def test_the_shipped_ingest_daily_deployment_without_a_feed_completes_and_says_where_to_put_files(
    stack: dict[str, Any]
) -> None:
    """As after `make demo` and `qmp schedules on`: no feed configured, the workspace's feed folder not created;
    the worker's run of the deployment as shipped (no parameters) completes instead of failing every weekday."""
    folder = Path(stack["env"]["QMP_HOME"]) / "incoming"
    assert not folder.exists()
    started = run_deployment("ingest/ingest-daily", timeout=0)
    done = _wait_for(started.id, {StateType.COMPLETED}, 300, stack["logs"])
    assert done.state and str(done.state.message).startswith(
        f"no feed yet: put per-instrument CSV/Parquet files in {folder} ")
