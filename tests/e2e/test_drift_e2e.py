"""Drift end to end: on a real Prefect server with a worker, the daily predictions of a production model whose
alpha flipped detect the drift, emit `qmp.model.drift`, and the retrain deployment's shipped `retrain-on-drift`
trigger starts a rolling retrain on its own short test segment, with no schedule involved."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.events.schemas.automations import Automation, AutomationCore
from prefect.events.schemas.events import ResourceSpecification

from registry import ModelFilter, ModelRegistry
from registry.statuses import EventKind
from tasks.core.data.qlib_binary import read_calendar
from tasks.core.data.synthetic import append_synthetic, synthesize
from tests.e2e.stack import LINEAR, ROOT, wait_for
from tests.e2e.test_real_server import FRESH_ENOUGH

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]
QMP = [sys.executable, "-c", "from deployments.cli import main; main()"]
RETRAIN = "retrain-lgbm-alpha158"
NAME = "e2e_drift"
FLIP = "2022-03-31"  # the last day of the planted alpha; afterwards it points the other way
FIRST_WINDOWS = {"mode": "rolling", "train_days": 120, "valid_days": 40, "test_days": 40}


def _qmp(stack: dict[str, Any], *args: str) -> str:
    done = subprocess.run([*QMP, *args], env=stack["env"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"qmp {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _run(stack: dict[str, Any], deployment: str, **parameters: Any) -> FlowRun:
    started = run_deployment(deployment, timeout=0, parameters=parameters)
    return wait_for(started.id, {StateType.COMPLETED}, 900, stack["logs"])


@pytest.fixture
def drift_deployment(stack: dict[str, Any], tmp_path: Path) -> Iterator[Path]:
    """The team's configuration for a name of its own: the retrain deployment trains it (a fast linear model on
    its own data directory) and the drift trigger watches it. The shared stack's deployment and automations are
    put back afterwards."""
    data = synthesize(tmp_path / "qlib", instruments=30, start="2021-01-01", end=FLIP, seed=7,
                      alpha_strength=3.0).out
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"retrain/{RETRAIN}")
        (on_drift,) = client.read_automations_by_name("retrain-on-drift")
        (after_promotion,) = client.read_automations_by_name("predict-after-promotion")
        workflow = {**LINEAR, "provider_uri": str(data)}
        client.update_deployment(deployment.id, DeploymentUpdate(
            parameters={**deployment.parameters, "model_name": NAME, "workflow": workflow, **FRESH_ENOUGH}))
        watched = _core(on_drift)
        watched.trigger.match = ResourceSpecification(  # type: ignore[union-attr]
            {**on_drift.trigger.match.model_dump(), "qmp.model-name": NAME})  # type: ignore[union-attr]
        client.update_automation(on_drift.id, watched)
        client.pause_automation(after_promotion.id)  # it would predict on the stack's data, not this test's
    try:
        yield data
    finally:
        _qmp(stack, "schedules", "off", RETRAIN)
        with get_client(sync_client=True) as client:
            client.update_deployment(deployment.id, DeploymentUpdate(parameters=deployment.parameters))
            client.update_automation(on_drift.id, _core(on_drift))
            client.resume_automation(after_promotion.id)


def _core(automation: Automation) -> AutomationCore:
    """The automation's editable part, as the update call takes it (the server refuses an owner_resource)."""
    editable = set(AutomationCore.model_fields) - {"owner_resource"}
    return AutomationCore.model_validate(automation.model_dump(include=editable))


def _drift_retrains(since: datetime) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[RETRAIN])))
    return [run for run in runs if run.created and run.created >= since and not run.auto_scheduled]


def test_a_flipped_alpha_drifts_and_the_shipped_trigger_retrains_on_a_short_test_segment(
    stack: dict[str, Any], drift_deployment: Path
) -> None:
    data = drift_deployment
    _run(stack, f"retrain/{RETRAIN}", windows=FIRST_WINDOWS)
    registry = ModelRegistry(stack["registry_dir"], stack["database_url"])
    try:
        production = registry.get_production_model(NAME)
        assert production is not None
        append_synthetic(data, "2022-06-30", seed=8, alpha_strength=-3.0)
        switched = _qmp(stack, "schedules", "on", RETRAIN)
        assert "trigger 'retrain-on-drift' on" in switched, switched
        time.sleep(5)  # the server's trigger service loads the enabled automations
        since = datetime.now(UTC)

        # the daily predictions from before the flip to the newest day: live IC falls once the alpha has flipped
        _run(stack, "predict/predict-daily", model_name=NAME, from_date="2022-03-01", provider_uri=str(data))

        assert [e.event for e in registry.history(NAME)].count(EventKind.DRIFT_DETECTED) == 1
        deadline = time.monotonic() + 180
        while not (runs := _drift_retrains(since)):
            assert time.monotonic() < deadline, "no retrain run started within 180 s of the drift event"
            time.sleep(3)
        (triggered,) = runs
        assert triggered.parameters["windows"]["test_days"] == 20  # the trigger's own window settings
        wait_for(triggered.id, {StateType.COMPLETED}, 900, stack["logs"])
        _report_the_window(registry, data, production.model_id)
    finally:
        registry.close()


def _report_the_window(registry: ModelRegistry, data: Path, first_model: str) -> None:
    """The drift retrain registered a model trained on days after the flip; prints its window beside the flip."""
    (retrained,) = [m for m in registry.list_models(ModelFilter(model_name=NAME)) if m.model_id != first_model]
    assert retrained.dataset_info is not None
    segments = retrained.dataset_info.model_dump()["segments"]
    calendar = read_calendar(data)
    assert pd.Timestamp(segments["train"][1]) > pd.Timestamp(FLIP) or pd.Timestamp(segments["valid"][1]) > pd.Timestamp(FLIP)
    assert pd.Timestamp(segments["test"][1]) == calendar[-1 - 2]  # the newest test day is h = 2 days back
    print(f"flip {FLIP}; drift retrain {retrained.model_id} ({retrained.status}): {segments}; "
          f"calendar ends {calendar[-1]:%Y-%m-%d} ({date.today():%Y-%m-%d})")
