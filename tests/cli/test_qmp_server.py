"""`qmp server`: a real local Prefect server in the foreground, one line on stdout, stopped by Ctrl-C (SIGINT)
with exit 0 and no process left behind; a taken port is one line on stderr."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import PREFECT_STARTUP_S

ENTRY = "import sys; sys.argv[0] = 'qmp'; from deployments.cli import main; main()"
PING_FLOW = """
from prefect import flow

@flow(name="qmp-server-ping")
def ping() -> int:
    return 42

print(ping())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "QMP_HOME": str(home / "qmp"), "PREFECT_HOME": str(home / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(PREFECT_STARTUP_S)}
    env.pop("PREFECT_API_URL", None)
    return env


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints on stdout, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"qmp server printed nothing in {timeout} s")
    return process.stdout.readline()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """`qmp server --port P` started as a user would; yields the process, its ready line and its QMP_HOME."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", ENTRY, "server", "--port", str(port)], env=_environment(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process, _first_line(process, PREFECT_STARTUP_S + 30), tmp_path / "qmp"
    finally:
        if process.poll() is None:  # the test failed before stopping it
            process.kill()
            process.wait()


@pytest.mark.slow
def test_qmp_server_serves_prefect_until_ctrl_c_and_leaves_no_process(
    server: tuple[subprocess.Popen[str], str, Path], tmp_path: Path
) -> None:
    process, ready, home = server
    url = ready.rsplit("export PREFECT_API_URL=", 1)[-1].strip()
    assert ready.startswith("Prefect server ready") and url.startswith("http://127.0.0.1:"), ready
    with urllib.request.urlopen(f"{url}/health", timeout=10) as health:
        assert health.status == 200
    children = psutil.Process(process.pid).children(recursive=True)
    assert children, "the Prefect server runs as a child process"

    ping = subprocess.run([sys.executable, "-c", PING_FLOW], env={**_environment(tmp_path), "PREFECT_API_URL": url},
                          capture_output=True, text=True, timeout=300)
    assert ping.returncode == 0 and ping.stdout.strip().endswith("42"), ping.stderr[-2000:]
    request = urllib.request.Request(f"{url}/flow_runs/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        runs = json.load(response)
    assert [run["state_type"] for run in runs] == ["COMPLETED"]  # the run was recorded by this server

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    assert out == "" and err == ""  # the ready line was the whole output; Prefect's banner went to the log
    time.sleep(0.5)
    assert [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    log = (home / "logs" / "prefect-server.log").read_text()
    assert f"Check out the dashboard at {url.removesuffix('/api')}" in log and "Server stopped!" in log, log[-2000:]


def test_qmp_server_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", ENTRY, "server", "--port", str(port)],
                              env=_environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: port {port} on 127.0.0.1 is taken"), done.stderr
    assert time.monotonic() - started < 30 and not (tmp_path / "prefect").exists()  # nothing was started
