"""What a `qmp` command shows: its answer on stdout and errors as one line on stderr. Progress bars, library
logs and third-party warnings go to the workspace's log file (`$QMP_HOME/logs/qmp.log`), or to the console
with `qmp --verbose`.

Set up through the environment, before Prefect, Qlib or MLflow is imported, so the libraries read it at
import and worker processes (process pool, Dask) inherit it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from registry.settings import workspace_home

QUIET_ENVIRONMENT = {
    "TQDM_DISABLE": "1",  # Qlib's backtest loop bars
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    # Run logs still reach the Prefect API and its UI; the command prints its own result and one-line errors.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "QMP_QLIB_CONSOLE_LEVEL": "CRITICAL",
}


class LogFile(logging.FileHandler):
    """Appends to a file created, with its directory, only when something is logged."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, delay=True)

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


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
    path = Path(os.environ.setdefault("QMP_LOG_FILE", str(log_file())))
    if _set_up:  # once per process (tests call the command several times in one)
        return path
    _set_up = True
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    handler = LogFile(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.addHandler(handler)
    warnings_logger.propagate = False  # not to Prefect's console handler on the root logger
    return path
