"""End to end: a real `prefect server start`, a process work pool and worker, deployments/prefect.yaml.

The test acts as the Prefect UI would, through the same API: it triggers deployments with parameters,
waits for a paused run, resumes it with an approval form, and reads the schedules' runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run

from registry import ModelFilter, ModelRegistry
from tests.e2e.stack import LINEAR, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

# The synthetic data ends in 2022: the deployment's stale-data alarm is switched off for these runs.
FRESH_ENOUGH: dict[str, Any] = {"freshness": {"max_data_age_days": None}}


def test_retrain_deployment_runs_on_the_worker_and_waits_for_approval(stack: dict[str, Any]) -> None:
    manual = run_deployment(
        "retrain/retrain-lgbm-alpha158", timeout=0,
        parameters={"model_name": "e2e_alpha158", "workflow": LINEAR, "policy": {"approval": "manual"},
                    "approval": {"timeout_seconds": 600, "poll_interval_seconds": 2}, **FRESH_ENOUGH},
    )
    paused = wait_for(manual.id, {StateType.PAUSED}, 300, stack["logs"])
    registry = ModelRegistry(stack["registry_dir"], stack["database_url"])
    assert registry.get_production_model("e2e_alpha158") is None
    resume_flow_run(paused.id, run_input={"decision": "approve", "approver": "erin", "comment": "looks good"})
    wait_for(manual.id, {StateType.COMPLETED}, 180, stack["logs"])

    production = registry.get_production_model("e2e_alpha158")
    assert production is not None
    promoted = [e for e in registry.history(model_id=production.model_id) if e.event == "promoted"]
    assert promoted and promoted[-1].actor == "erin" and promoted[-1].reason == "looks good"
    assert promoted[-1].flow_run_id == str(manual.id)

    # The same configuration on the same data: the gate ends the run Completed and registers nothing.
    unchanged = run_deployment(
        "retrain/retrain-lgbm-alpha158", timeout=0,
        parameters={"model_name": "e2e_alpha158", "workflow": LINEAR, **FRESH_ENOUGH},
    )
    wait_for(unchanged.id, {StateType.COMPLETED}, 300, stack["logs"])
    assert len(registry.list_models(ModelFilter(model_name="e2e_alpha158"))) == 1
    automatic = run_deployment(
        "retrain/retrain-lgbm-alpha158", timeout=0,
        parameters={"model_name": "e2e_alpha158", "workflow": LINEAR, "force": True, **FRESH_ENOUGH},
    )
    wait_for(automatic.id, {StateType.COMPLETED}, 300, stack["logs"])
    assert len(registry.list_models(ModelFilter(model_name="e2e_alpha158"))) == 2
    # The same deterministic configuration on the same window is not better than production, so production stays.
    assert registry.get_production_model("e2e_alpha158").model_id == production.model_id  # type: ignore[union-attr]
    registry.close()


def test_deployment_parameters_are_validated_against_their_schema(stack: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"(?i)validation|schema|invalid"):
        run_deployment("retrain/retrain-lgbm-alpha158", timeout=0,
                       parameters={"model_name": "../etc", "workflow": LINEAR})


def test_schedules_are_deployed_inactive_and_qmp_schedules_on_starts_the_nightly_cleanup(stack: dict[str, Any]) -> None:
    with get_client(sync_client=True) as client:
        for name in ("retrain/retrain-lgbm-alpha158", "cleanup/cleanup-nightly"):
            deployment = client.read_deployment_by_name(name)
            assert deployment.schedules and not any(s.active for s in deployment.schedules)
            assert "Asia/Shanghai" in (deployment.description or "")
    qmp = str(Path(sys.executable).with_name("qmp"))
    done = subprocess.run([qmp, "schedules", "on", "cleanup-nightly"], env=stack["env"], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        assert all(s.active for s in client.read_deployment_by_name("cleanup/cleanup-nightly").schedules)
        assert not any(s.active for s in client.read_deployment_by_name("retrain/retrain-lgbm-alpha158").schedules)
        while True:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["cleanup-nightly"])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
            )
            if runs:
                break
            assert time.monotonic() < deadline, "the scheduler created no cleanup runs within 90 s"
            time.sleep(3)
    times = sorted(run.expected_start_time for run in runs if run.expected_start_time)
    assert times and all(t.astimezone(ZoneInfo("Asia/Shanghai")).hour == 2 for t in times)
