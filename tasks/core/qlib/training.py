"""Build a Qlib dataset once and train a model on it as a Qlib Recorder (MLflow) run.

Both steps run under the process-wide Qlib lock: Qlib's recorder and data provider are module
globals, so several trainings requested at once (a flow mapping over configurations on Prefect's
thread pool) run one after another. Progress (the steps, Qlib's own log lines and LightGBM's
evaluation lines) goes to the logger passed in, typically the Prefect run logger.
"""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qlib.data.dataset import Dataset, DatasetH
from qlib.model.base import Model
from qlib.utils import flatten_dict, init_instance_by_config
from qlib.workflow import R

from registry.settings import Settings
from tasks.core.qlib.session import (
    QLIB_LOCK,
    ensure_experiment,
    init_from_qlib_init,
    long_lived_objects_frozen,
)
from tasks.core.qlib.workflow_config import WorkflowConfig
from tasks.core.third_party import OFF_CONSOLE, keep_marked_lines_off_the_console, library_console_level
from tasks.core.timing import timed

Logger = logging.Logger | logging.LoggerAdapter[Any]
DATASET_OBJECT = "dataset"  # the recorder object name Qlib's trainer and PredUpdater use
_log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A fitted model and where its Qlib recorder run is stored."""

    model: Model
    experiment_name: str
    recorder_id: str
    params: dict[str, Any] = field(default_factory=dict)
    model_type: str = ""


def prepare_dataset(
    cfg: WorkflowConfig, settings: Settings, logger: Logger | None = None
) -> DatasetH:
    """Initialise Qlib for ``cfg`` and build its dataset (features, labels, processors) once."""
    log = logger or _log
    with qlib_step(logger):
        init_from_qlib_init(cfg.qlib_init, settings)
        info = cfg.dataset_info
        log.info(
            "building dataset: %s on %s, %s..%s",
            info.handler,
            info.instruments,
            info.start_time,
            info.end_time,
        )
        with timed() as clock:
            dataset = init_instance_by_config(cfg.dataset, accept_types=Dataset)
        log.info("dataset ready in %.1f s", clock.seconds)
    if not isinstance(dataset, DatasetH):
        raise TypeError(f"{cfg.source}: the pipeline needs a DatasetH, got {type(dataset).__name__}")
    return dataset


def train_model(
    cfg: WorkflowConfig,
    dataset: DatasetH,
    experiment_name: str,
    logger: Logger | None = None,
    *,
    settings: Settings,
    recorder_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Fit ``cfg``'s model on ``dataset`` inside a new recorder run of ``experiment_name``."""
    log = logger or _log
    with qlib_step(logger):
        init_from_qlib_init(cfg.qlib_init, settings)
        ensure_experiment(experiment_name, settings)
        with timed() as clock, R.start(experiment_name=experiment_name, recorder_name=recorder_name):
            recorder = R.get_recorder()
            log.info(
                "training %s in experiment %r, recorder %s", cfg.model_type, experiment_name, recorder.id
            )
            # The same parameters, objects and tags qrun records, so Qlib's own tooling reads our runs.
            R.log_params(**flatten_dict(cfg.task))
            R.save_objects(task=cfg.task)
            R.set_tags(hostname=socket.gethostname(), model_type=cfg.model_type, **(tags or {}))
            model = init_instance_by_config(cfg.model, accept_types=Model)
            model.fit(dataset)
            R.save_objects(**{"params.pkl": model})
            # Saved as Qlib's trainer saves it (the handler's fitted processors, no data), so that
            # Qlib's PredUpdater / OnlineToolR and tasks.core.qlib.scoring can predict new days with it.
            dataset.config(dump_all=False, recursive=True)
            R.save_objects(**{DATASET_OBJECT: dataset})
            recorder_id = str(recorder.id)
        duration = clock.seconds
        log.info("trained %s in %.1f s (recorder %s)", cfg.model_type, duration, recorder_id)
    return TrainResult(
        model=model,
        experiment_name=experiment_name,
        recorder_id=recorder_id,
        params=cfg.hyperparameters,
        model_type=cfg.model_type,
    )


def _forward(target: Logger, level: int, message: str) -> None:
    """Re-emit a library's line on the run logger: kept in the run's log (Prefect's API, the UI), shown on the
    console only from the process's library console level up (quiet commands and `qmp serve`: errors only)."""
    target.log(level, "%s", message, extra={OFF_CONSOLE: level < library_console_level()})


class _LineForwarder:
    """LightGBM logger target: lines go to the current run's logger, else where LightGBM prints them."""

    target: Logger | None = None

    def info(self, msg: str) -> None:
        """Forward an informational line."""
        if self.target is None:
            print(msg)  # LightGBM's own default
        elif msg.strip():
            _forward(self.target, logging.INFO, msg.rstrip())

    def warning(self, msg: str) -> None:
        """Forward a warning line."""
        if self.target is None:
            warnings.warn(msg, stacklevel=2)  # LightGBM's own default
        else:
            _forward(self.target, logging.WARNING, msg.rstrip())


class _ForwardHandler(logging.Handler):
    """Re-emits Qlib's log records on another logger."""

    def __init__(self, target: Logger) -> None:
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        _forward(self.target, record.levelno, record.getMessage())


_lightgbm_lines = _LineForwarder()


@contextmanager
def qlib_step(logger: Logger | None) -> Iterator[None]:
    """What every Qlib step (prepare, train, evaluate) runs inside: QLIB_LOCK, its log lines sent to
    ``logger``, and the process's long-lived objects frozen out of the garbage collector's passes."""
    with QLIB_LOCK, forward_logs(logger), long_lived_objects_frozen():
        yield


@contextmanager
def forward_logs(logger: Logger | None) -> Iterator[None]:
    """Send LightGBM's and Qlib's log lines to ``logger`` for the duration (callers hold QLIB_LOCK)."""
    if logger is None:
        yield
        return
    try:
        import lightgbm

        lightgbm.register_logger(_lightgbm_lines)
    except ImportError:  # models other than LightGBM do not need it
        pass
    handler = _ForwardHandler(logger)
    qlib_logger = logging.getLogger("qlib")
    _lightgbm_lines.target = logger
    keep_marked_lines_off_the_console()
    # Qlib's own console handler steps aside meanwhile: the run logger prints the line, so it appears once; its
    # log file (a quiet command's) keeps getting them.
    own_handlers = qlib_logger.handlers[:]
    qlib_logger.handlers = [handler, *(h for h in own_handlers if isinstance(h, logging.FileHandler))]
    try:
        yield
    finally:
        qlib_logger.handlers = own_handlers
        _lightgbm_lines.target = None
