"""What a `qmp` command shows: its answer on stdout and errors as one line on stderr. Progress bars, library
logs and third-party warnings go to the workspace's log file (`$QMP_HOME/logs/qmp.log`), or to the console
with `qmp --verbose`.

Set up through the environment, before Prefect, Qlib or MLflow is imported, so the libraries read it at
import and the processes a command starts (its process pool and Dask workers, the flow runs of `qmp serve`)
inherit it; `tasks/core/third_party.py` applies it in those.
"""

from __future__ import annotations

import os
from pathlib import Path

from registry.settings import workspace_home
from tasks.core.third_party import CONSOLE_LEVEL_VARIABLE, LOG_FILE_VARIABLE, warnings_to_log_file

QUIET_ENVIRONMENT = {
    "TQDM_DISABLE": "1",  # Qlib's backtest loop bars
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    # Run logs still reach the Prefect API and its UI; the command prints its own result and one-line errors.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    CONSOLE_LEVEL_VARIABLE: "CRITICAL",
}


_set_up = False


def log_file() -> Path:
    """Where a quiet command's library output goes."""
    return workspace_home() / "logs" / "qmp.log"


# Long-running servers whose console is their log: their runs' logs stay on it.
SERVING_COMMANDS = frozenset({"serve", "ui"})


def set_up_output(verbose: bool, command: str | None = None) -> Path | None:
    """Quiet by default (returns the log file); ``verbose`` leaves every library's console output on, and
    the serving commands keep Prefect's run logs on the console."""
    global _set_up
    if verbose:
        return None
    if command in SERVING_COMMANDS:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO")
    path = Path(os.environ.setdefault(LOG_FILE_VARIABLE, str(log_file())))
    if _set_up:  # once per process (tests call the command several times in one)
        return path
    _set_up = True
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings_to_log_file(path)
    return path
