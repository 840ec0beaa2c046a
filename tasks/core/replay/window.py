"""One window of a replay, in whatever process runs it: train (or reload) the model, predict, register.

A window already registered under the replay's name is not trained again: its model is loaded from
the registry and only predicts, so a re-run (after a crash or a kill) gives the same combined result
and registers each window exactly once. Its version is the window index, so two runs racing on one
window meet at the database's unique version and the loser takes the winner's model.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from pydantic import BaseModel, ConfigDict

from registry import DatasetConfig, DuplicateVersionError, ModelMetadata, ModelNotFoundError, ModelStatus
from tasks.core.replay.plan import ReplayPlan, Window
from tasks.core.timing import Stopwatch, timed

_PROCESS_STARTED = time.time()
_first_window_seen = False


class WindowResult(BaseModel):
    """What a window returns to the flow: its version, metrics, predictions and where the time went."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int
    model_id: str
    trained: bool
    segments: dict[str, list[str]]
    metrics: dict[str, float]
    pred: Any  # pd.DataFrame, one `score` column
    label: Any  # pd.DataFrame, the raw label
    seconds: dict[str, float]
    pid: int
    peak_mib: float = 0.0  # this worker process's peak RSS so far


def _startup_seconds() -> float:
    """Seconds from this worker process's start to its first window (0 afterwards)."""
    global _first_window_seen
    if _first_window_seen:
        return 0.0
    _first_window_seen = True
    return max(0.0, time.time() - _PROCESS_STARTED)


@contextmanager
def _without_qlib_run_logging() -> Iterator[None]:
    """Drop what a model logs to Qlib's ``R`` while it fits (Qlib's LGBModel logs its eval curve there).

    A replay window keeps no MLflow run: the registry holds its model and metrics. With no active
    recorder, Qlib's ``R.log_metrics`` starts a run in a ``Default`` experiment and never ends it, so the
    first window would leave a dangling run in the tracking database and every later ``R.start`` in the
    process would fail with "Run ... is already active".
    """
    from qlib.workflow import R

    R.log_metrics = lambda *args, **kwargs: None  # the wrapper's own attribute shadows the recorder's method
    try:
        yield
    finally:
        del R.log_metrics


def window_dataset(plan: ReplayPlan, window: Window) -> tuple[Any, float, float]:
    """The window's DatasetH over the replay's shared raw features; (dataset, read seconds, processor seconds)."""
    from qlib.data.dataset import DatasetH

    from tasks.core.replay.features import window_handler

    handler, read, processed = window_handler(plan, window)
    return DatasetH(handler=handler, segments=window.segment_tuples()), read, processed


def run_window(plan: ReplayPlan, window: Window, *, threads: int | None = None) -> WindowResult:
    """Train (or reload) window ``window`` of ``plan``, predict its test segment, register it once.

    ``threads``: at most this many native threads (BLAS, OpenMP) for the fit and the prediction, so that
    worker processes sharing a machine do not each start one per core; None leaves the libraries' default.
    """
    from qlib.model.base import Model
    from qlib.utils import init_instance_by_config
    from threadpoolctl import threadpool_limits

    from tasks.core.lifecycle import open_registry
    from tasks.core.qlib.evaluation import predict, raw_label, signal_metrics
    from tasks.core.qlib.session import init_from_qlib_init
    from tasks.core.qlib.training import qlib_step

    seconds = {"startup": _startup_seconds()}
    with qlib_step(None):
        init_from_qlib_init(plan.qlib_init, plan.settings)
        registry = open_registry(plan.settings)
        model_id = f"{plan.replay_name}_v{window.version}"
        dataset, seconds["features"], seconds["processors"] = window_dataset(plan, window)
        with threadpool_limits(limits=threads) if threads else nullcontext():
            with timed() as fitting:
                try:
                    model = registry.get_model(model_id)
                    trained = False
                except ModelNotFoundError:
                    model = init_instance_by_config(plan.task["model"], accept_types=Model)
                    with _without_qlib_run_logging():
                        model.fit(dataset)
                    trained = True
            seconds["fit"] = fitting.seconds
            predicting = Stopwatch()
            pred = predict(model, dataset, "test")
        label = raw_label(dataset, "test")
        metrics, _ = signal_metrics(pred, label)
        metrics["test_days"] = float(pred.index.get_level_values("datetime").nunique())
        seconds["predict"] = predicting.seconds
        with timed() as registering:
            if trained:
                trained = _register(registry, plan, window, model, metrics)
            peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seconds["register"] = registering.seconds
    return WindowResult(
        index=window.index, model_id=model_id, trained=trained, segments=window.segments, metrics=metrics,
        pred=pred, label=label, seconds=seconds, pid=os.getpid(), peak_mib=peak_mib,
    )


def _register(registry: Any, plan: ReplayPlan, window: Window, model: Any, metrics: dict[str, float]) -> bool:
    """Register the window's model; False when another run registered this window first."""
    import math

    handler = plan.handler_config
    kwargs = handler.get("kwargs") or {}
    label = (kwargs.get("label") or [None])[0]
    metadata = ModelMetadata(
        model_name=plan.replay_name,
        version=window.version,
        performance_metrics={k: v for k, v in metrics.items() if math.isfinite(v)},
        dataset_info=DatasetConfig(
            instruments=kwargs.get("instruments"), start_time=window.segments["train"][0],
            end_time=window.segments["test"][1], label=label, handler=str(handler.get("class")),
            segments=window.segments, fit_start_time=window.fit_start_time, fit_end_time=window.fit_end_time,
            data_version=plan.data_version, processors=plan.spec.processors,
        ),
        hyperparameters=dict(plan.task["model"].get("kwargs") or {}),
        model_type=str(plan.task["model"]["class"]).rsplit(".", 1)[-1],
        tags={
            "source": "replay", "replay_id": plan.replay_id, "replay_of": plan.model_name,
            "window_index": str(window.index), "processors": plan.spec.processors,
        },
        description=f"window {window.index}/{len(plan.windows)} of replay {plan.replay_id} of {plan.model_name}",
    )
    try:
        registry.register_model(model, metadata, actor="rolling-flow", reason=f"replay {plan.replay_id}",
                                initial_status=ModelStatus.REGISTERED)
    except DuplicateVersionError:
        return False
    return True
