"""Approvals end to end: a real Prefect server, a process work pool and worker, `qmp` as a separate process.

A manual retrain deployment run suspends (its process exits), survives a SIGKILLed worker, and is resumed
by `qmp approve` on a new worker; concurrent answers promote once; late and stale answers are refused.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from registry import Approvals, ApprovalState, ModelFilter, ModelMetadata, ModelRegistry
from tests.e2e.stack import LINEAR, ROOT, start_worker, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]
QMP = [sys.executable, "-c", "from deployments.cli import main; main()"]


def _qmp(stack: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*QMP, *args], env=stack["env"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _qmp_done(stack: dict[str, Any], *args: str) -> tuple[int, str]:
    process = _qmp(stack, *args)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the flow-run processes a process worker starts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _manual_retrain(name: str, timeout_seconds: int = 1800) -> Any:
    return run_deployment(
        "retrain/retrain-lgbm-alpha158", timeout=0,
        parameters={"model_name": name, "workflow": LINEAR, "policy": {"approval": "manual"},
                    "approval": {"timeout_seconds": timeout_seconds},
                    # The synthetic data ends in 2022: the deployment's stale-data alarm is not what this tests.
                    "freshness": {"max_data_age_days": None}},
    )


def _suspended(stack: dict[str, Any], run_id: Any) -> Any:
    run = wait_for(run_id, {StateType.PAUSED}, 600, stack["logs"])
    assert run.state.name == "Suspended", run.state  # a deployment run suspends; it does not pause in place
    return run


def _registry(stack: dict[str, Any]) -> ModelRegistry:
    return ModelRegistry(stack["registry_dir"], stack["database_url"])


def _recorder_runs(stack: dict[str, Any], experiment: str) -> int:
    client = MlflowClient(tracking_uri=stack["env"]["QMP_MLFLOW_URI"])
    found = client.get_experiment_by_name(experiment)
    return 0 if found is None else len(client.search_runs([found.experiment_id]))


def test_a_suspended_approval_survives_a_killed_worker_and_qmp_approve_promotes_once(stack: dict[str, Any]) -> None:
    run = _manual_retrain("e2e_suspend")
    _suspended(stack, run.id)
    seen_suspended = time.monotonic()
    worker = stack["processes"][-1]
    while _children(worker.pid) and time.monotonic() - seen_suspended < 120:
        time.sleep(0.2)
    held = time.monotonic() - seen_suspended
    assert not _children(worker.pid), "the suspended run's process did not exit"
    report = stack["logs"] / "approval_hold.txt"
    report.write_text(f"process alive after the run was seen Suspended: {held:.1f} s (polled every 0.2 s)\n")
    print(f"\n[measure] a pending approval holds a process for {held:.1f} s after suspending, then none")

    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    start_worker(stack["env"], stack["logs"], stack["processes"], stack["files"], "worker-2.log")

    registry = _registry(stack)
    candidate = registry.list_models(ModelFilter(model_name="e2e_suspend"))[0]
    assert Approvals(registry).require(candidate.model_id).pending
    code, listed = _qmp_done(stack, "approvals", "list")
    assert code == 0 and candidate.model_id in listed, listed

    code, output = _qmp_done(stack, "approve", candidate.model_id, "--approver", "erin", "--comment", "looks good")
    assert code == 0, output
    wait_for(run.id, {StateType.COMPLETED}, 600, stack["logs"])

    production = registry.get_production_model("e2e_suspend")
    assert production is not None and production.model_id == candidate.model_id
    events = registry.history(model_id=candidate.model_id)
    assert [e.event for e in events].count("approval_requested") == 1
    approved = [e for e in events if e.event == "approved"]
    assert len(approved) == 1 and approved[0].actor == "erin" and approved[0].reason == "looks good"
    promoted = [e for e in events if e.event == "promoted"]
    assert len(promoted) == 1 and promoted[0].actor == "erin" and promoted[0].flow_run_id == str(run.id)
    assert _recorder_runs(stack, "e2e_suspend") == 1  # the resumed run did not train again
    registry.close()


def test_stale_approvals_are_refused_and_concurrent_forced_approvals_promote_once(stack: dict[str, Any]) -> None:
    registry = _registry(stack)
    baseline = registry.register_model({"stand-in": 0}, ModelMetadata(model_name="e2e_race", performance_metrics={"ic_mean": -0.5}))
    registry.set_production_model(baseline, reason="baseline")
    run = _manual_retrain("e2e_race")
    _suspended(stack, run.id)
    candidate = next(m for m in registry.list_models(ModelFilter(model_name="e2e_race")) if m.model_id != baseline)
    better = registry.register_model({"stand-in": 1}, ModelMetadata(model_name="e2e_race", performance_metrics={"ic_mean": 0.9}))
    registry.set_production_model(better, reason="a better model arrived meanwhile")

    code, output = _qmp_done(stack, "approve", candidate.model_id, "--approver", "erin")
    # The stand-in production model cannot be re-scored on the candidate's window: it is not shown to be beaten.
    assert code == 1 and "cannot be shown to beat production" in output and better in output, output
    assert registry.get_production_model("e2e_race").model_id == better  # type: ignore[union-attr]

    racers = [_qmp(stack, "approve", candidate.model_id, "--approver", who, "--force") for who in ("frank", "grace")]
    results = [(p.wait(timeout=300), p.stdout.read() if p.stdout else "") for p in racers]
    assert sorted(code for code, _ in results) == [0, 1], results
    winner = "frank" if results[0][0] == 0 else "grace"
    loser_output = results[1][1] if winner == "frank" else results[0][1]
    assert f"already approved by {winner} at" in loser_output, loser_output
    wait_for(run.id, {StateType.COMPLETED}, 600, stack["logs"])
    assert registry.get_production_model("e2e_race").model_id == candidate.model_id  # type: ignore[union-attr]
    promotions = [e for e in registry.history(model_id=candidate.model_id) if e.event == "promoted"]
    assert [e.actor for e in promotions] == [winner]
    registry.close()


def test_an_answer_after_the_timeout_is_refused_and_nothing_changes(stack: dict[str, Any]) -> None:
    run = _manual_retrain("e2e_late", timeout_seconds=20)
    _suspended(stack, run.id)
    registry = _registry(stack)
    candidate = registry.list_models(ModelFilter(model_name="e2e_late"))[0]
    expires = Approvals(registry).require(candidate.model_id).expires_at
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1)

    code, output = _qmp_done(stack, "approve", candidate.model_id, "--approver", "heidi")
    assert code == 1 and "timed out" in output, output
    assert registry.get_production_model("e2e_late") is None
    assert Approvals(registry).require(candidate.model_id).state == ApprovalState.TIMED_OUT
    assert [e.event for e in registry.history(model_id=candidate.model_id)][-2:] == ["approval_timed_out", "approval_refused"]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.type != StateType.COMPLETED  # the run never went on to promote
    registry.close()
