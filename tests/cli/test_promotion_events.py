"""`qmp models promote|rollback`, run as a user runs them, send the same Prefect events as the flows' promotions.

The deployment trigger of `predict` (deployments/prefect.yaml) listens for `qmp.model.promoted`: a promotion
made from the command line must reach the Prefect server too, from a process that exits right after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry import ModelMetadata, ModelRegistry

pytestmark = pytest.mark.usefixtures("prefect_server")


def _qmp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    qmp = shutil.which("qmp", path=str(Path(sys.executable).parent)) or "qmp"
    return subprocess.run([qmp, *args], env=env, capture_output=True, text=True, timeout=120)


def _events(prefix: str, resource: str, expected: int) -> list[dict[str, object]]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    event_filter = EventFilter(event=EventNameFilter(prefix=[prefix]), resource=EventResourceFilter(id=[resource]))
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:  # limit: the client's default (100) is above the server's cap (50)
        while True:
            found = [e.model_dump(mode="json") for e in client.read_events(filter=event_filter, limit=50).events]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def test_cli_promote_and_rollback_reach_the_prefect_server_as_events(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    registry = ModelRegistry(tmp_path / "registry")
    first, second = (
        registry.register_model({"n": n}, ModelMetadata(model_name="evented", performance_metrics={"ic_mean": n / 100}))
        for n in (1, 2)
    )
    registry.close()
    env = {**os.environ, "QMP_REGISTRY_DIR": str(tmp_path / "registry"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("QMP_DATABASE_URL", None)

    for model_id in (first, second):
        done = _qmp("models", "promote", model_id, "--actor", "alice", "--reason", "cli test", env=env)
        assert done.returncode == 0, done.stderr
    done = _qmp("models", "rollback", "evented", env=env)
    assert done.returncode == 0, done.stderr

    promoted = _events("qmp.model.promoted", f"qmp.model.{second}", 1)
    assert len(promoted) == 1
    payload = promoted[0]["payload"]
    assert payload["model_id"] == second and payload["previous"] == first  # type: ignore[index]
    assert payload["actor"] == "alice" and payload["reason"] == "cli test"  # type: ignore[index]
    assert promoted[0]["resource"]["qmp.model-name"] == "evented"  # type: ignore[index]
    rolled_back = _events("qmp.model.rolled_back", f"qmp.model.{first}", 1)
    assert len(rolled_back) == 1 and rolled_back[0]["payload"]["previous"] == second  # type: ignore[index]
