"""`qmp serve` when it stops: SIGTERM with its server up pauses its deployments (exit 0, nothing on stderr); a
server that goes away, alone or together with it (a closed terminal, `kill %1 %2`), ends it within seconds with
one line on stderr, exit 1 and no traceback. Real `qmp server` and `qmp serve` processes on a free port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.cli.test_qmp_server import ENTRY, _environment, _first_line, _free_port
from tests.conftest import PREFECT_STARTUP_S

STOPS_WITHIN_S = 15  # the server's health is checked every second, three refused connections in a row end serve


class Served:
    """A `qmp server` of its own (own PREFECT_HOME and port) and the `qmp serve` processes started on it."""

    def __init__(self, home: Path, stack: ExitStack) -> None:
        self.env = _environment(home)
        self.stack = stack
        self.server = self._start("server", "--port", str(_free_port()))
        self.url = ""

    def _start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", ENTRY, *args], env=env or self.env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stack.callback(_kill, process)
        return process

    def ready(self) -> str:
        ready = _first_line(self.server, PREFECT_STARTUP_S + 30)
        self.url = ready.rsplit("export PREFECT_API_URL=", 1)[-1].strip()
        assert self.url.startswith("http://127.0.0.1:"), ready
        return self.url

    def serve(self) -> subprocess.Popen[str]:
        return self._start("serve", env={**self.env, "PREFECT_API_URL": self.url})

    def serving(self, serve: subprocess.Popen[str]) -> subprocess.Popen[str]:
        """``serve`` once it has registered every deployment (its first line)."""
        line = _first_line(serve, 180)
        assert line.startswith(f"serving 7 deployments on {self.url} until Ctrl-C"), line + serve.communicate()[1]
        return serve

    def paused(self) -> dict[str, bool]:
        request = urllib.request.Request(f"{self.url}/deployments/filter", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return {deployment["name"]: deployment["paused"] for deployment in json.load(response)}


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:  # the test failed before stopping it
        process.kill()
        process.wait()


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Served, Served]]:
    """Two servers starting at the same time (their start-up is most of the cost)."""
    with ExitStack() as stack:
        servers = (Served(tmp_path / "a", stack), Served(tmp_path / "b", stack))
        for served in servers:
            served.ready()
        yield servers


def _ends_promptly(serve: subprocess.Popen[str], url: str, since: float, paused: bool = False) -> None:
    """Ended within STOPS_WITHIN_S of ``since``: with one line and exit 1, or (``paused``) quietly with exit 0."""
    out, err = serve.communicate(timeout=60)
    took = time.monotonic() - since
    if not (paused and serve.returncode == 0 and err == ""):
        assert serve.returncode == 1, err
        assert err == (f"error: the Prefect server at {url} stopped answering: qmp serve stopped (its schedules "
                       "were left as they are on the server)\n"), err
    assert "Traceback" not in out and took < STOPS_WITHIN_S, f"{took:.1f} s\n{out}"


@pytest.mark.slow
def test_serve_pauses_on_sigterm_and_ends_in_seconds_with_one_line_when_its_server_goes_away(
    two_servers: tuple[Served, Served],
) -> None:
    alone, together = two_servers
    serve_alone, serve = alone.serving(alone.serve()), together.serving(together.serve())

    serve.send_signal(signal.SIGTERM)  # its server still up: it pauses its deployments and ends quietly
    alone.server.send_signal(signal.SIGINT)  # meanwhile the other server goes away under its serve
    assert alone.server.wait(timeout=60) == 0
    _ends_promptly(serve_alone, alone.url, since=time.monotonic())
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0 and err == "", err
    assert list(together.paused().values()) == [True] * 7

    serve = together.serving(together.serve())
    started = time.monotonic()
    for process in (together.server, serve):  # a closed terminal, `kill %1 %2`
        process.send_signal(signal.SIGTERM)
    # It pauses its deployments if the server still answers when it tries, else says it could not.
    _ends_promptly(serve, together.url, since=started, paused=True)
    assert together.server.wait(timeout=60) == 0


def _watched_for(api: str, seconds: float) -> bool:
    """Whether `qmp serve`'s health watch took the server at ``api`` for gone within ``seconds``."""
    import anyio

    from deployments import serve

    async def watch() -> bool:
        gone: list[bool] = []
        with anyio.move_on_after(seconds):
            async with anyio.create_task_group() as group:
                group.start_soon(serve._watch, api, group.cancel_scope, gone)
        return bool(gone)

    return anyio.run(watch)


def test_a_server_too_busy_to_answer_in_time_is_not_taken_for_gone_and_a_closed_port_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only refused connections stop `qmp serve`: a loaded Prefect server (or serve's own busy event loop) that
    misses health checks stopped a served run halfway under CI load before this rule."""
    from deployments import serve

    monkeypatch.setattr(serve, "HEALTH_EVERY_S", 0.05)
    monkeypatch.setattr(serve, "HEALTH_TIMEOUT_S", 0.2)
    with socket.socket() as silent:  # accepts connections (its backlog) and never answers: every check times out
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        assert not _watched_for(f"http://127.0.0.1:{silent.getsockname()[1]}/api", 3.0)
    closed = _free_port()  # nothing listens there
    assert _watched_for(f"http://127.0.0.1:{closed}/api", 5.0)
