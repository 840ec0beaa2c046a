"""Known third-party noise that is not ours to show: silenced once per process, before Qlib is imported.

Where a process's library output goes is decided once, at the CLI's edge (`deployments/cli/output.py`), and
handed down through the environment, so that every process a command starts follows it: its process pool and
Dask workers, and the flow runs `qmp serve` starts in fresh interpreters. A quiet command sets
``QMP_LOG_FILE`` (where library logs and warnings go) and ``QMP_QLIB_CONSOLE_LEVEL`` (the level from which
Qlib's and LightGBM's lines still reach the console); `qmp --verbose` sets neither.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

CONSOLE_LEVEL_VARIABLE, LOG_FILE_VARIABLE = "QMP_QLIB_CONSOLE_LEVEL", "QMP_LOG_FILE"
# Set on a record a library logged (Qlib, LightGBM) that a run logger re-emits below the console level: the run's
# log on the Prefect API keeps it, the console does not show it.
OFF_CONSOLE = "qmp_off_console"


def silence_known_notices() -> None:
    """Drop gym's unmaintained-package notice and the warnings our dependencies raise on import, and send
    every other warning to the log file when the command that started this process is quiet.

    Qlib's RL module imports gym 0.26, which prints a three-line notice to stderr from the
    `gym_notices` table on import; we never use gym, so its table is emptied before anything imports it.
    """
    try:
        import gym_notices.notices as gym_notices
    except ImportError:
        pass
    else:
        gym_notices.notices.clear()
    for module in ("gym", "qlib", "mlflow", "lightgbm"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    if path := os.environ.get(LOG_FILE_VARIABLE):
        warnings_to_log_file(Path(path))


class LogFile(logging.FileHandler):
    """Appends to a file created, with its directory, only when something is logged."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, delay=True)

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def warnings_to_log_file(path: Path) -> None:
    """Python warnings (a RuntimeWarning of numpy inside Qlib's backtest, say) go to ``path``, not to stderr
    nor to Prefect's console handler on the root logger; once per process."""
    warnings_logger = logging.getLogger("py.warnings")
    if any(isinstance(handler, LogFile) for handler in warnings_logger.handlers):
        return
    handler = LogFile(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    warnings_logger.addHandler(handler)
    warnings_logger.propagate = False


def library_console_level() -> int:
    """The level from which a library's lines re-emitted on a run logger still reach the console."""
    level = logging.getLevelName(os.environ.get(CONSOLE_LEVEL_VARIABLE, "DEBUG").upper())
    return level if isinstance(level, int) else logging.DEBUG


class _OffConsole(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, OFF_CONSOLE, False)


def keep_marked_lines_off_the_console() -> None:
    """Prefect's console handlers on the root logger, which run loggers propagate to, drop the records marked
    :data:`OFF_CONSOLE`; its API handler, log files and any other handler still get them. Once per handler
    (called at every step: Prefect may set its logging up again). Told apart by their module, as nothing here
    imports Prefect."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and type(handler).__module__.startswith("prefect.") \
                and not any(isinstance(f, _OffConsole) for f in handler.filters):
            handler.addFilter(_OffConsole())
