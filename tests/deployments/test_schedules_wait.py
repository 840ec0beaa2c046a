"""`qmp schedules on --wait SECONDS`: waits for the deployments `qmp serve` registers, turns them on once they are
there, and names the missing ones in one line when they never come (on the session's Prefect server)."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound

from deployments.cli.schedules import set_schedules
from tests.cli.test_qmp_models import qmp

pytestmark = pytest.mark.usefixtures("prefect_server")


def _absent(full_name: str) -> None:
    """Delete the deployment if an earlier test of the session registered it."""
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_deployment(client.read_deployment_by_name(full_name).id)


def _register_cleanup_nightly() -> None:
    """What `qmp serve` registers for cleanup-nightly, as far as `schedules on` reads it: an inactive schedule."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("cleanup")
        client.create_deployment(flow_id, "cleanup-nightly", schedules=[DeploymentScheduleCreate(
            schedule=CronSchedule(cron="0 2 * * *", timezone="Asia/Shanghai"), active=False)])


def test_schedules_on_wait_names_the_missing_deployments_in_one_line_when_they_never_come(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _absent("rollback/rollback")
    started = time.monotonic()
    code, out, err = qmp("schedules", "on", "rollback", "--wait", "2", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: rollback not served on http") and " after 2 s (missing or paused)" in err, err
    assert 2 <= time.monotonic() - started < 10


def test_schedules_on_wait_turns_the_deployments_on_once_they_are_registered() -> None:
    _absent("cleanup/cleanup-nightly")
    registering = threading.Timer(1.5, _register_cleanup_nightly)  # `qmp serve` still starting
    registering.start()
    try:
        changed = set_schedules(True, ["cleanup-nightly"], wait_s=60)
    finally:
        registering.join()
    assert changed == [("cleanup-nightly", "0 2 * * *", "Asia/Shanghai")]
    with get_client(sync_client=True) as client:
        assert [s.active for s in client.read_deployment_by_name("cleanup/cleanup-nightly").schedules] == [True]
