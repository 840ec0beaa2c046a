"""The documentation's shell blocks are tested: each is marked, every `qmp` command parses, and the
runnable ones run in order, in a fresh workspace, each in a new shell, as a newcomer pastes them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from deployments.cli import app
from tests.docs.blocks import ROOT, Block, blocks, pages, qmp_commands

ALL_BLOCKS = [block for page in pages() for block in blocks(page)]


def test_every_shell_block_says_whether_the_docs_test_runs_it() -> None:
    unmarked = [block.where for block in ALL_BLOCKS if block.mode is None]
    assert unmarked == [], "mark these with <!-- docs-test: run --> or <!-- docs-test: check (why) -->"


def parse(args: list[str]) -> None:
    """`qmp ARGS --help`: the command path and every flag must exist (nothing runs); raises AssertionError."""
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"`qmp {' '.join(args)}`: {result.output.strip().splitlines()[-2:]}"


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if qmp_commands(b)], ids=lambda b: b.where)
def test_every_qmp_command_in_the_docs_parses(block: Block) -> None:
    for args in qmp_commands(block):
        parse(args)


def new_shell_environment(home: Path) -> dict[str, str]:
    """A user's shell after `source .venv/bin/activate`: qmp on PATH, the workspace in ``home``, no settings,
    an empty Prefect home."""
    keep = ("HOME", "LANG", "TERM", "PREFECT_SERVER_ANALYTICS_ENABLED", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(QMP_HOME=str(home), PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", COLUMNS="200",
               PYTHONPATH=str(ROOT), PREFECT_HOME=str(home.parent / "prefect"))  # no runs of earlier sessions
    return env


BLOCK_SECONDS = 1800
SERVERS_STOP_SECONDS = 10.0  # how long a `run servers` block's jobs may take to end after the block did
STARTED_BY = "QMP_DOCS_TEST_BLOCK"  # every process a block starts inherits it, servers and orphans included
# What Qlib, LightGBM and numpy print in a flow run; `qmp serve` shows its runs' own log lines, not these.
LIBRARY_NOISE = re.compile(r"Warning:|ModuleNotFoundError\.|Time cost: |field data contains nan|common_infra|"
                           r"load calendar error|train's l2|Traceback")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def started_by(token: str) -> list[psutil.Process]:
    """The live processes whose environment carries ``token`` (found even when they left the block's session)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(STARTED_BY) == token and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def stop_what_it_started(token: str, patience: float) -> list[str]:
    """Wait up to ``patience`` s for the block's processes to end by themselves, then SIGTERM what is left (a
    `qmp server` stops its Prefect server on it) and SIGKILL what still runs 30 s later; returns what was left."""
    deadline = time.monotonic() + patience
    while (left := started_by(token)) and time.monotonic() < deadline:
        time.sleep(0.5)
    names = []
    for process in left:
        with contextlib.suppress(psutil.Error):
            names.append(" ".join(process.cmdline()[:5]))
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=30)
    for process in alive + started_by(token):
        with contextlib.suppress(psutil.Error):
            process.kill()
    return names


def run_block(block: Block, env: dict[str, str], cwd: Path) -> None:
    """Run ``block`` in a new `bash -euo pipefail`; whatever it started is stopped afterwards, even on failure."""
    script = block.text.replace("make demo", "qmp demo")  # the install is the test's own virtualenv
    if block.mode == "servers":
        script = script.replace("4200", str(free_port()))  # Prefect's default port may be taken here
    token = uuid.uuid4().hex
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        shell = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env={**env, STARTED_BY: token},
                                 stdout=out, stderr=err, text=True, start_new_session=True)
        code: int | str = "interrupted"
        try:
            code = shell.wait(timeout=BLOCK_SECONDS)
        except subprocess.TimeoutExpired:
            code = f"timed out after {BLOCK_SECONDS} s"
        finally:
            left = stop_what_it_started(token, SERVERS_STOP_SECONDS if block.mode == "servers" and code == 0 else 0)
            shell.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), without_git_usage(err.read())
        output = f"{stdout[-3000:]}\n{stderr[-3000:]}"
    assert code == 0, f"{block.where} failed ({code}):\n{output}{server_log_tail(block, env)}"
    if block.mode == "servers":
        assert left == [], f"{block.where} left these running (stopped by the test): {left}\n{output}"
        noise = [line for line in (stdout + stderr).splitlines() if LIBRARY_NOISE.search(line)]
        assert noise == [], f"{block.where}: library output on the console of its servers and runs: {noise[:10]}"


def server_log_tail(block: Block, env: dict[str, str]) -> str:
    """The end of `qmp server`'s log, for a failed block that started one."""
    log = Path(env["QMP_HOME"]) / "logs" / "prefect-server.log"
    if block.mode != "servers" or not log.exists():
        return ""
    return "\n-- " + str(log) + " --\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])


def without_git_usage(stderr: str) -> str:
    """stderr without the usage text `git diff` prints when Qlib's recorder runs it outside a repository (the
    blocks run in a directory that is not one): it would push the command's own error out of the message."""
    start = re.compile(r"^(usage: git|warning: Not a git repository|fatal: not a git repository|error: unknown option)")
    kept, skipping = [], False
    for line in stderr.splitlines():
        if start.match(line):
            skipping = True
        elif skipping and line and not line.startswith((" ", "\t")) and not line.endswith("options"):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def run_background_block(block: Block, env: dict[str, str], cwd: Path) -> None:
    process = subprocess.Popen(["bash", "-c", block.text], cwd=cwd, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.get(block.url or "", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, f"{block.where} exited: {process.stderr.read() if process.stderr else ''}"
                assert time.monotonic() < deadline, f"{block.where}: {block.url} never answered"
                time.sleep(0.5)
        assert response.status_code == 200, f"{block.where}: {block.url} answered {response.status_code}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.slow
def test_the_runnable_blocks_work_pasted_in_order_in_a_fresh_workspace(tmp_path: Path) -> None:
    env = new_shell_environment(tmp_path / "home")
    anywhere = tmp_path / "somewhere" / "else"
    anywhere.mkdir(parents=True)
    for block in ALL_BLOCKS:
        if block.mode in ("run", "servers"):
            run_block(block, env, anywhere)
        elif block.mode == "background":
            run_background_block(block, env, anywhere)


def test_the_parse_check_refuses_an_unknown_flag_and_command() -> None:
    with pytest.raises(AssertionError, match="No such option"):
        parse(["retrain", "--no-such-flag"])
    with pytest.raises(AssertionError, match="No such command"):
        parse(["models", "no-such-command"])


def running(command: str) -> list[str]:
    return [" ".join(p.info["cmdline"]) for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == command.split()]


def test_a_failing_block_leaves_nothing_running_not_even_what_left_its_session(tmp_path: Path) -> None:
    block = Block("docs/x.md", 1, "servers", "sleep 3017 &\nsetsid sleep 3018 &\nsleep 0.5\nfalse")
    with pytest.raises(AssertionError, match=r"failed \(1\)"):
        run_block(block, new_shell_environment(tmp_path), tmp_path)
    assert running("sleep 3017") == running("sleep 3018") == []


def test_a_servers_block_that_leaves_a_server_running_fails_and_the_server_is_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "SERVERS_STOP_SECONDS", 1.0)
    block = Block("docs/x.md", 1, "servers", "sleep 3019 &")
    with pytest.raises(AssertionError, match=r"left these running .*sleep 3019"):
        run_block(block, new_shell_environment(tmp_path), tmp_path)
    assert running("sleep 3019") == []
