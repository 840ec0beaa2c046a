"""Stopping and starting the local PostgreSQL server (the one CI runs against), always leaving it running."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN

CONF_DIR = Path("/etc/postgresql")


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


@contextmanager
def server_left_running() -> Iterator[None]:
    """Whatever happens inside, the server is running and accepting connections afterwards."""
    _cluster()
    try:
        yield
    finally:
        if not is_running():
            pg_ctl("start")
        wait_until_accepting()
