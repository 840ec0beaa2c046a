"""`qmp serve` on a real Prefect server, run as a user would: from a directory that is not the repository,
from a non-editable install (a wheel unpacked into a fresh directory), next to a `registry/` data folder.
Then the two paths meeting: after `prefect deploy` created the same deployments, `qmp serve` refuses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from registry import ModelRegistry
from tasks.core.data.synthetic import synthesize
from tests.e2e.stack import free_port, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
QMP = [sys.executable, "-c", "import sys; sys.argv[0] = 'qmp'; from deployments.cli import main; main()"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our packages as a wheel installs them (no repository files besides the package data)."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    target = tmp_path_factory.mktemp("site")
    wheel = next(wheels.glob("qlib_model_pipeline-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert (target / "deployments" / "examples" / "workflow_config_linear_Alpha158.yaml").is_file()
    assert not (target / "examples").exists()
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, installed: Path) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("prefect-home-serve")
    workdir = tmp_path_factory.mktemp("user-dir")
    (workdir / "registry").mkdir()  # a data folder named like our package, in the serving directory
    data = synthesize(tmp_path_factory.mktemp("serve-data") / "qlib", instruments=24, seed=5).out
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "QMP_REGISTRY_DIR": str(workdir / "registry"),
        "QMP_PROVIDER_URI": str(data),
    }
    env.pop("QMP_DATABASE_URL", None)
    env.pop("QMP_MLFLOW_URI", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600  # a loaded 2-core machine can take minutes
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (home / "server.log").read_text()[-3000:]
            time.sleep(1)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield {"env": env, "workdir": workdir, "home": home}
    finally:
        stop(process)
        log.close()


def _wait_for_deployment(name: str, serve: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                assert serve.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, f"{name} not served in {timeout} s\n{log.read_text()[-4000:]}"
                time.sleep(2)


def test_serve_runs_from_any_directory_with_inactive_schedules_until_turned_on(server: dict[str, Any]) -> None:
    env, workdir = server["env"], server["workdir"]
    log_path = server["home"] / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen([*QMP, "serve"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            retrain = _wait_for_deployment("retrain/retrain-lgbm-alpha158", serve, log_path)
            cleanup = _wait_for_deployment("cleanup/cleanup-nightly", serve, log_path)
            # Shipped inactive, and the time zone is in the description where users look.
            for deployment in (retrain, cleanup):
                assert deployment.schedules and not any(s.active for s in deployment.schedules)
                assert "Asia/Shanghai" in (deployment.description or "")
            assert retrain.work_pool_name is None and retrain.entrypoint == "flows.retrain.retrain"

            turned_on = subprocess.run([*QMP, "schedules", "on"], env=env, cwd=workdir, capture_output=True,
                                       text=True, timeout=180)
            assert turned_on.returncode == 0, turned_on.stderr
            assert "retrain-lgbm-alpha158: schedule '30 16 * * 1-5' (Asia/Shanghai) on" in turned_on.stdout
            with get_client(sync_client=True) as client:
                for name in ("retrain/retrain-lgbm-alpha158", "cleanup/cleanup-nightly"):
                    assert all(s.active for s in client.read_deployment_by_name(name).schedules)

            # A relative `examples/...` path names the shipped example; the run imports the installed packages,
            # not the `registry/` folder of the working directory.
            run = run_deployment("retrain/retrain-lgbm-alpha158", timeout=600, parameters={
                "model_name": "served", "workflow": {"config_path": "examples/workflow_config_linear_Alpha158.yaml"},
                # The synthetic data ends in 2022: the deployment's stale-data alarm is not what this tests.
                "freshness": {"max_data_age_days": None},
            })
            assert run.state is not None and run.state.type == StateType.COMPLETED, (
                f"{run.state}\n{log_path.read_text()[-4000:]}")
        finally:
            stop(serve)
    with ModelRegistry(workdir / "registry") as registry:
        assert [m.model_name for m in registry.list_models()] == ["served"]
    text = log_path.read_text()
    assert "Gym has been unmaintained" not in text


def test_serve_refuses_deployments_that_prefect_deploy_created(server: dict[str, Any]) -> None:
    env = {**server["env"], "PYTHONPATH": ""}
    for command in ([PREFECT, "work-pool", "create", "qmp-process", "--type", "process"],
                    [PREFECT, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"]):
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    refused = subprocess.run([*QMP, "serve"], env=server["env"], cwd=server["workdir"], capture_output=True,
                             text=True, timeout=180)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "prefect deploy" in refused.stderr and "prefect worker start --pool qmp-process" in refused.stderr
    assert "prefect deployment delete" in refused.stderr
    with get_client(sync_client=True) as client:  # the work-pool deployment is untouched
        assert client.read_deployment_by_name("retrain/retrain-lgbm-alpha158").work_pool_name == "qmp-process"
