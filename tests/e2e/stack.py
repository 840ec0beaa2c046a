"""The real server stack of the end-to-end tests: `prefect server start`, a process work pool, the deployments of
deployments/prefect.yaml and a worker, as separate processes; and the helpers that wait on its flow runs."""

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

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
STARTUP_S = int(os.environ.get("QMP_TEST_PREFECT_STARTUP_S", "120"))
LINEAR = {"config_path": str(ROOT / "examples" / "workflow_config_linear_Alpha158.yaml")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_stack(
    env: dict[str, str], api: str, logs: Path, processes: list[subprocess.Popen[bytes]], files: ExitStack,
    registry_dir: Path, postgres_url: str, port: int,
) -> Iterator[dict[str, Any]]:
    """Starts the server, creates the pool, deploys everything and starts a worker; stops them all at the end."""
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
        yield {"api": api, "registry_dir": registry_dir, "database_url": postgres_url, "logs": logs, "env": env,
               "processes": processes, "files": files}
    finally:
        for process in reversed(processes):
            stop(process)


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


def wait_for(flow_run_id: Any, done: set[StateType], timeout: float, logs: Path) -> FlowRun:
    """The flow run once its state is in `done`; fails with the worker's log when it fails or times out."""
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
