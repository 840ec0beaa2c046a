"""A command's output is ours: gym's notice is not printed, Qlib's log lines appear once during a step."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from tasks.core.qlib.training import forward_logs


@pytest.mark.slow  # imports Qlib in a fresh interpreter
def test_importing_qlib_through_our_code_prints_no_gym_notice() -> None:
    done = subprocess.run([sys.executable, "-c", "import tasks.core.qlib.session, qlib.rl"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Gym has been unmaintained" not in done.stderr and "gymnasium" not in done.stderr.lower()


def test_qlib_lines_go_to_the_run_logger_only_while_a_step_forwards_them() -> None:
    qlib_logger = logging.getLogger("qlib")
    printed = io.StringIO()
    saved = qlib_logger.handlers[:]
    qlib_logger.handlers = [logging.StreamHandler(printed)]  # stands in for Qlib's console handler
    forwarded: list[str] = []
    target = logging.getLogger("qmp-test-run-logger")
    target.propagate = False
    target.setLevel(logging.INFO)
    sink = logging.Handler()
    sink.emit = lambda record: forwarded.append(record.getMessage())  # type: ignore[method-assign]
    target.addHandler(sink)
    try:
        with forward_logs(target):
            logging.getLogger("qlib.Test").info("built the dataset")
        assert forwarded == ["built the dataset"] and printed.getvalue() == ""
        logging.getLogger("qlib.Test").info("outside a step")
        assert "outside a step" in printed.getvalue() and forwarded == ["built the dataset"]
    finally:
        qlib_logger.handlers = saved
        target.removeHandler(sink)


RECORDER_RUN = """
import sys
from pathlib import Path
from registry.settings import Settings
from tasks.core.qlib.session import init_qlib
from qlib.workflow import R
home = Path(sys.argv[1])
init_qlib(home / "no-data", settings=Settings(registry_dir=home / "registry"))
with R.start(experiment_name="quiet"):
    recorder = R.get_recorder()
print(sorted(a.path for a in recorder.client.list_artifacts(recorder.id)))
"""


@pytest.mark.slow  # starts Qlib and MLflow in two fresh interpreters
def test_a_recorder_keeps_the_code_state_of_a_repository_and_prints_nothing_outside_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside, repo = tmp_path / "outside", tmp_path / "repo"
    outside.mkdir()
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=repo, check=True)
    (repo / "a.txt").write_text("two\n")
    runs = {where: subprocess.run([sys.executable, "-c", RECORDER_RUN, str(tmp_path / where.name)], cwd=where,
                                  capture_output=True, text=True, timeout=300) for where in (outside, repo)}
    for done in runs.values():
        assert done.returncode == 0, done.stderr[-2000:]
        assert "git" not in done.stderr.lower(), done.stderr[-2000:]
    assert "code_diff.txt" not in runs[outside].stdout
    assert all(name in runs[repo].stdout for name in ("code_diff.txt", "code_status.txt", "code_cached.txt"))
