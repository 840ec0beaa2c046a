"""The end-to-end tests share one real server stack for the session (tests/e2e/stack.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.core.data.synthetic import synthesize
from tests.e2e.stack import free_port, run_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[dict[str, Any]]:
    """Server, work pool, deployments and worker, shared by the end-to-end modules; every process is stopped at
    the end, also on failure."""
    home = tmp_path_factory.mktemp("prefect-home")
    data = synthesize(tmp_path_factory.mktemp("e2e-data") / "qlib", instruments=24, seed=5).out
    registry_dir = tmp_path_factory.mktemp("e2e-registry")
    port = free_port()
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
        yield from run_stack(env, api, logs, processes, files, registry_dir, postgres_url, port)


@pytest.fixture(autouse=True)
def stack_api(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test using the stack talks to its server; only during that test, so that a session Prefect server
    of the same worker is the API again afterwards."""
    if "stack" not in request.fixturenames:
        yield
        return
    api = request.getfixturevalue("stack")["api"]
    with temporary_settings(updates={PREFECT_API_URL: api}):
        yield
