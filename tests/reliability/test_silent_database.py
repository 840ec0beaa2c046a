"""A PostgreSQL registry whose peer stops answering (a relay that accepts and stays silent): pages answer 503
within the database timeout, hung requests do not stop other requests, the app recovers when the database
answers again, and the CLI's registry commands fail in one line within the same bound."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from deployments.ui.app import create_app
from registry import ModelRegistry
from registry.settings import Settings
from tests.silent_relay import silent_relay, through
from tests.ui.conftest import fill, ui_settings
from tests.ui.serving import served

pytestmark = [pytest.mark.postgres]
TIMEOUT = 3.0  # QMP_DATABASE_TIMEOUT for these tests
BOUND = TIMEOUT + 2.5  # the timeout, plus libpq's 2 s minimum for a connection attempt begun near its end


def _get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=60)
    return response.status_code, time.monotonic() - started


def test_pages_answer_503_within_the_timeout_while_the_database_is_silent_and_recover(
        postgres_url: str, tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "fill", postgres_url) as registry:
        fill(registry, names=2, versions=3, prefix=f"silent{os.getpid()}")
    with silent_relay() as relay:
        settings = Settings(registry_dir=tmp_path / "reg", database_url=through(postgres_url, relay),
                            database_timeout=TIMEOUT)  # type: ignore[call-arg]
        with served(create_app(ui_settings(), registry_settings=settings)) as base:
            assert _get(f"{base}/api/overview")[0] == 200  # pooled connections through the relay
            relay.silent = True
            with ThreadPoolExecutor(30) as pool:
                hung = [pool.submit(_get, f"{base}{path}") for path in ["/api/overview", "/", "/approvals"] * 8]
                time.sleep(0.5)
                others = [_get(f"{base}/static/style.css"), _get(f"{base}/login")]
                answers = [future.result() for future in hung]
            assert all(status == 200 and seconds < 1.5 for status, seconds in others), others
            assert {status for status, _ in answers} == {503}, answers
            assert max(seconds for _, seconds in answers) < 2 * BOUND, answers
            single = _get(f"{base}/api/overview")
            assert single[0] == 503 and single[1] < BOUND, single
            relay.silent = False
            deadline = time.monotonic() + 3 * BOUND
            while (status := _get(f"{base}/api/overview")[0]) != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert status == 200


def test_a_cli_registry_command_fails_in_one_line_within_the_timeout(postgres_url: str, tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "fill", postgres_url):
        pass  # the schema exists
    with silent_relay() as relay:
        relay.silent = True
        env = {**os.environ, "QMP_DATABASE_URL": through(postgres_url, relay), "QMP_REGISTRY_DIR": str(tmp_path / "r"),
               "QMP_DATABASE_TIMEOUT": str(TIMEOUT)}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", "from deployments.cli import main; main()", "models", "list"], env=env,
                                capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "registry database" in result.stderr
    assert elapsed < BOUND + 10, elapsed  # + the interpreter's start-up and imports
