"""The documentation's shell blocks are tested: each is marked, every `qmp` command parses, and the
runnable ones run in order, in a fresh workspace, each in a new shell, as a newcomer pastes them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
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
    """A user's shell after `source .venv/bin/activate`: qmp on PATH, the workspace in ``home``, no settings."""
    keep = ("HOME", "LANG", "TERM", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(QMP_HOME=str(home), PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", COLUMNS="200",
               PYTHONPATH=str(ROOT))
    return env


def run_block(block: Block, env: dict[str, str], cwd: Path) -> None:
    script = block.text.replace("make demo", "qmp demo")  # the install is the test's own virtualenv
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    assert done.returncode == 0, f"{block.where} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{without_git_usage(done.stderr)[-3000:]}"


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
        if block.mode == "run":
            run_block(block, env, anywhere)
        elif block.mode == "background":
            run_background_block(block, env, anywhere)


def test_the_parse_check_refuses_an_unknown_flag_and_command() -> None:
    with pytest.raises(AssertionError, match="No such option"):
        parse(["retrain", "--no-such-flag"])
    with pytest.raises(AssertionError, match="No such command"):
        parse(["models", "no-such-command"])
