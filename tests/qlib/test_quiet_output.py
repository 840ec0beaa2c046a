"""A command's output is ours: gym's notice is not printed, Qlib's log lines appear once during a step."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from prefect.logging.handlers import PrefectConsoleHandler

from tasks.core.qlib.training import forward_logs
from tasks.core.third_party import CONSOLE_LEVEL_VARIABLE

IMPORT_MODELS = """
import builtins, sys
printed = []
real_print = builtins.print
def print_as_run_log(*args, **kwargs):  # what Prefect's `log_prints` makes of print inside a flow run
    if kwargs.get("file") in (None, sys.stdout, sys.stderr):
        printed.append(" ".join(map(str, args)))
    else:
        real_print(*args, **kwargs)
builtins.print = print_as_run_log
import tasks.core.qlib.session, qlib.rl
tasks.core.qlib.session._import_qlib_models_quietly()
builtins.print = real_print
import qlib.contrib.model
print(printed)
"""


@pytest.mark.slow  # imports Qlib in a fresh interpreter
def test_importing_qlib_and_its_models_through_our_code_prints_nothing_even_where_print_is_a_run_log() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_MODELS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Gym has been unmaintained" not in done.stderr and "gymnasium" not in done.stderr.lower()
    assert done.stdout == "[]\n"  # Qlib's "ModuleNotFoundError. CatBoostModel are skipped" lines went nowhere


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


@pytest.mark.parametrize("console_level, on_console", [
    ("CRITICAL", ["dataset ready in 5.7 s"]),  # a quiet command's, and `qmp serve`'s
    (None, ["Time cost: 5.289s | Loading data Done", "$close field data contains nan.", "dataset ready in 5.7 s"]),
])
def test_qlibs_lines_in_a_step_stay_in_the_run_log_and_its_file_but_leave_a_quiet_console(
        console_level: str | None, on_console: list[str], tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    if console_level is None:
        monkeypatch.delenv(CONSOLE_LEVEL_VARIABLE, raising=False)  # `qmp --verbose`
    else:
        monkeypatch.setenv(CONSOLE_LEVEL_VARIABLE, console_level)
    console, run_log = io.StringIO(), io.StringIO()
    console_handler = PrefectConsoleHandler(stream=console)  # as Prefect's logging config puts it on the root logger
    run_log_handler = logging.StreamHandler(run_log)  # and for its API handler on the run logger
    log_file = logging.FileHandler(tmp_path / "qmp.log")
    qlib_logger, root, target = logging.getLogger("qlib"), logging.getLogger(), logging.getLogger("qmp-test-run")
    saved = qlib_logger.handlers[:]
    qlib_logger.handlers = [log_file]
    root.addHandler(console_handler)
    target.addHandler(run_log_handler)
    target.setLevel(logging.INFO)
    try:
        with forward_logs(target):
            logging.getLogger("qlib.timer").info("Time cost: 5.289s | Loading data Done")
            logging.getLogger("qlib.data").warning("$close field data contains nan.")
            target.info("dataset ready in 5.7 s")  # the step's own line
    finally:
        qlib_logger.handlers = saved
        root.removeHandler(console_handler)
        target.removeHandler(run_log_handler)
        log_file.close()
    lines = ["Time cost: 5.289s | Loading data Done", "$close field data contains nan.", "dataset ready in 5.7 s"]
    assert [line for line in lines if line in console.getvalue()] == on_console
    assert run_log.getvalue().splitlines() == [
        "Time cost: 5.289s | Loading data Done", "$close field data contains nan.", "dataset ready in 5.7 s"]
    assert (tmp_path / "qmp.log").read_text().splitlines() == [
        "Time cost: 5.289s | Loading data Done", "$close field data contains nan."]
