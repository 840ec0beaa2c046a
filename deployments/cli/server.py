"""`qmp server`: a local Prefect server kept running in the foreground, so that later commands use it
(`export PREFECT_API_URL=...`) instead of starting a temporary server each.

Prefect's own `prefect server start` runs as a child process with this process's environment (the project's
Prefect settings: analytics off, `PREFECT_HOME`, the database URL). Its banner and logs go to
`$QMP_HOME/logs/prefect-server.log` unless `qmp --verbose server`. Ctrl-C or SIGTERM stops the child, then
the command exits 0. Prefect is not imported here: the command only waits for the child's health endpoint.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import IO, Annotated

import typer

from deployments.cli.console import console, err_console
from registry.settings import workspace_home

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
STOP_SECONDS = 30  # a graceful stop (SIGINT) gets this long before the child is killed


def log_path() -> Path:
    """Where the server's banner and logs go when the command is quiet."""
    return workspace_home() / "logs" / "prefect-server.log"


def api_url(port: int) -> str:
    return f"http://{HOST}:{port}/api"


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``HOST:port`` now (the check `prefect server start` makes itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _startup_seconds() -> float:
    return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))


def _wait_until_healthy(child: subprocess.Popen[bytes], url: str, where: str) -> str | None:
    """None once the API answers; otherwise why it never did."""
    deadline = time.monotonic() + _startup_seconds()
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return f"the Prefect server exited with code {child.returncode} before answering at {url} (see {where})"
        if _healthy(url):
            return None
        time.sleep(0.5)
    return f"the Prefect server did not answer at {url} within {_startup_seconds():.0f} s (see {where})"


def _stop(child: subprocess.Popen[bytes]) -> int:
    """Stop the server as Ctrl-C in its terminal would (SIGINT), then kill it if it hangs."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _start(port: int, output: IO[bytes] | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PREFECT_CLI_PROMPT": "false"}  # never ask to edit a Prefect profile
    env.pop("PREFECT_API_URL", None)  # the server's own clients use its address
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]
    # Its own process group: Ctrl-C reaches this process only, which stops the child once (`_stop`).
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output,
                            stderr=subprocess.STDOUT if output else None, process_group=0)


def server_command(
    context: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on (on 127.0.0.1).")] = DEFAULT_PORT,
) -> None:
    """Run a local Prefect server until Ctrl-C; export the PREFECT_API_URL it prints so that `qmp retrain`,
    `predict`, `rolling` and `serve` use it instead of starting a temporary server each."""
    url = api_url(port)
    if not port_is_free(port):
        err_console.print(f"[red]error:[/] port {port} on {HOST} is taken (a server already running there? "
                          f"`qmp server --port N` picks another)", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    verbose = bool(context.find_root().params.get("verbose"))
    where = "the console above" if verbose else str(log_path())
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` stops the child as Ctrl-C does
    with ExitStack() as stack:
        output = None
        if not verbose:
            log_path().parent.mkdir(parents=True, exist_ok=True)
            output = stack.enter_context(log_path().open("ab"))
        child = _start(port, output)
        try:
            failure = _wait_until_healthy(child, url, where)
            if failure is not None:
                err_console.print(f"[red]error:[/] {failure}", highlight=False, soft_wrap=True)
                raise typer.Exit(1)
            console.print(f"Prefect server ready (Ctrl-C stops it): export PREFECT_API_URL={url}",
                          highlight=False, soft_wrap=True)
            child.wait()
        except KeyboardInterrupt:
            pass
        finally:
            code = _stop(child)
    if code not in (0, -signal.SIGINT, 130):
        err_console.print(f"[red]error:[/] the Prefect server exited with code {code} (see {where})", highlight=False)
        raise typer.Exit(1)
