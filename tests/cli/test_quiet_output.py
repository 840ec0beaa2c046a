"""Quiet by default: a command's stderr carries its one-line error, the libraries' logs go to the workspace's
log file, and `--verbose` shows them (the real entry point in a new process, as a user runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_qmp(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QMP_HOME": str(home), "PYTHONPATH": str(ROOT)}
    for variable in ("QMP_LOG_FILE", "QMP_QLIB_CONSOLE_LEVEL", "TQDM_DISABLE", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"):
        env.pop(variable, None)
    return subprocess.run([sys.executable, "-c", "from deployments.cli import main; main()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def bad_workflow(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("task:\n  model: {class: Nope, module_path: nowhere}\n")
    return path


def test_a_bad_workflow_is_one_line_and_qlibs_logs_go_to_the_log_file(bad_workflow: Path, tmp_path: Path) -> None:
    done = run_qmp("retrain", "--config", str(bad_workflow), "--model-name", "m", home=tmp_path / "home", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"error: {bad_workflow}: missing 'qlib_init' section\n"
    assert "Render the template" in (tmp_path / "home" / "logs" / "qmp.log").read_text()


def test_verbose_shows_qlibs_logs_on_the_console(bad_workflow: Path, tmp_path: Path) -> None:
    done = run_qmp("--verbose", "retrain", "--config", str(bad_workflow), "--model-name", "m",
                   home=tmp_path / "home", cwd=tmp_path)
    assert done.returncode == 1
    assert "Render the template" in done.stderr
    assert done.stderr.endswith(f"error: {bad_workflow}: missing 'qlib_init' section\n")
