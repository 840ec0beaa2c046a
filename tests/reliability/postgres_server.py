"""Stopping and starting the local PostgreSQL server (the one CI runs against), always leaving it running."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN

CONF_DIR = Path("/etc/postgresql")
# Test sessions running side by side (CI jobs, several developers) take turns to stop the shared server.
RESTART_LOCK = Path(tempfile.gettempdir()) / "qmp-postgres-restart.lock"


def _cluster() -> list[str]:
    if shutil.which("pg_ctlcluster") is None or not CONF_DIR.is_dir():
        pytest.skip("needs pg_ctlcluster to restart the local PostgreSQL server")
    version = sorted(p.name for p in CONF_DIR.iterdir())[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def pg_ctl(action: str) -> None:
    """Run `pg_ctlcluster ... main ACTION` (stop is fast mode: sessions are cut, as in a crash or failover)."""
    subprocess.run([*_cluster(), action], check=True, capture_output=True, timeout=60)


def wait_until_accepting(timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(POSTGRES_ADMIN, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def is_running() -> bool:
    return subprocess.run([*_cluster(), "status"], capture_output=True).returncode == 0


def ensure_running(timeout_s: float = 60.0) -> None:
    """Start the server unless it runs (retrying: another session may be starting it at the same moment)."""
    deadline = time.monotonic() + timeout_s
    while not is_running():
        result = subprocess.run([*_cluster(), "start"], capture_output=True, timeout=60)
        if result.returncode != 0 and time.monotonic() > deadline:
            raise RuntimeError(f"cannot start PostgreSQL: {result.stderr.decode(errors='replace')[-500:]}")
        time.sleep(0.5)
    wait_until_accepting(timeout_s)


@contextmanager
def server_left_running() -> Iterator[None]:
    """Take the restart turn; whatever happens inside, the server is running and accepting connections afterwards."""
    _cluster()
    with open(RESTART_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ensure_running()
            yield
        finally:
            ensure_running()
