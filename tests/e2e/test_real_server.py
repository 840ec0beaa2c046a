"""End to end: a real `prefect server start`, a process work pool and worker, deployments/prefect.yaml.

The test acts as the Prefect UI would, through the same API: it triggers deployments with parameters,
waits for a paused run, resumes it with an approval form, and reads the schedules' runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings

from registry import ModelFilter, ModelRegistry
from tasks.core.data.synthetic import synthesize

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
STARTUP_S = int(os.environ.get("QMP_TEST_PREFECT_STARTUP_S", "120"))
LINEAR = {"config_path": str(ROOT / "examples" / "workflow_config_linear_Alpha158.yaml")}
# The synthetic data ends in 2022: the deployment's stale-data alarm is switched off for these runs.
FRESH_ENOUGH: dict[str, Any] = {"freshness": {"max_data_age_days": None}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[dict[str, Any]]:
    """Server, work pool, deployments and worker; every process is stopped at the end, also on failure."""
    home = tmp_path_factory.mktemp("prefect-home")
    data = synthesize(tmp_path_factory.mktemp("e2e-data") / "qlib", instruments=24, seed=5).out
    registry_dir = tmp_path_factory.mktemp("e2e-registry")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "QMP_REGISTRY_DIR": str(registry_dir),
        "QMP_DATABASE_URL": postgres_url,
        "QMP_PROVIDER_URI": str(data),
        "QMP_MLFLOW_URI": f"sqlite:///{registry_dir / 'mlflow.db'}",
    }
    processes: list[subprocess.Popen[bytes]] = []
    logs = home / "logs"
    logs.mkdir()
    with ExitStack() as files:
        yield from _run_stack(env, api, logs, processes, files, registry_dir, postgres_url, port)


def _run_stack(
    env: dict[str, str], api: str, logs: Path, processes: list[subprocess.Popen[bytes]], files: ExitStack,
    registry_dir: Path, postgres_url: str, port: int,
) -> Iterator[dict[str, Any]]:
    try:
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=ROOT, stdout=files.enter_context(open(logs / "server.log", "wb")),  # noqa: SIM115 - the ExitStack closes it
            stderr=subprocess.STDOUT,
        )
        processes.append(server)
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (logs / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"prefect server did not become healthy in {STARTUP_S} s"
            time.sleep(1)
        for command in (
            [PREFECT, "work-pool", "create", "qmp-process", "--type", "process"],
            [PREFECT, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"],
        ):
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, f"{' '.join(command[1:])} failed:\n{done.stdout}\n{done.stderr}"
        start_worker(env, logs, processes, files)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield {"api": api, "registry_dir": registry_dir, "database_url": postgres_url, "logs": logs, "env": env,
                   "processes": processes, "files": files}
    finally:
        for process in reversed(processes):
            _stop(process)


def start_worker(env: dict[str, str], logs: Path, processes: list[subprocess.Popen[bytes]], files: ExitStack,
                 log_name: str = "worker.log") -> subprocess.Popen[bytes]:
    """A process worker on the qmp-process pool; stopped with the stack."""
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "qmp-process"],
        env=env, cwd=ROOT, stdout=files.enter_context(open(logs / log_name, "ab")),  # noqa: SIM115 - the ExitStack closes it
        stderr=subprocess.STDOUT,
    )
    processes.append(worker)
    return worker


def _wait_for(flow_run_id: Any, done: set[StateType], timeout: float, logs: Path) -> FlowRun:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state and run.state.type in done:
                return run
            if run.state and run.state.type in {StateType.FAILED, StateType.CRASHED}:
                raise AssertionError(f"{run.name} {run.state.type}: {run.state.message}\n{(logs / 'worker.log').read_text()[-4000:]}")
            time.sleep(2)
    raise AssertionError(f"flow run {flow_run_id} not in {done} after {timeout} s\n{(logs / 'worker.log').read_text()[-4000:]}")


def test_retrain_deployment_runs_on_the_worker_and_waits_for_approval(stack: dict[str, Any]) -> None:
    manual = run_deployment(
        "retrain/retrain-lgbm-alpha158", timeout=0,
        parameters={"model_name": "e2e_alpha158", "workflow": LINEAR, "policy": {"approval": "manual"},
                    "approval": {"timeout_seconds": 600, "poll_interval_seconds": 2}, **FRESH_ENOUGH},
    )
    paused = _wait_for(manual.id, {StateType.PAUSED}, 300, stack["logs"])
    registry = ModelRegistry(stack["registry_dir"], stack["database_url"])
    assert registry.get_production_model("e2e_alpha158") is None
    resume_flow_run(paused.id, run_input={"decision": "approve", "approver": "erin", "comment": "looks good"})
    _wait_for(manual.id, {StateType.COMPLETED}, 180, stack["logs"])

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
    _wait_for(unchanged.id, {StateType.COMPLETED}, 300, stack["logs"])
    assert len(registry.list_models(ModelFilter(model_name="e2e_alpha158"))) == 1
    automatic = run_deployment(
        "retrain/retrain-lgbm-alpha158", timeout=0,
        parameters={"model_name": "e2e_alpha158", "workflow": LINEAR, "force": True, **FRESH_ENOUGH},
    )
    _wait_for(automatic.id, {StateType.COMPLETED}, 300, stack["logs"])
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
