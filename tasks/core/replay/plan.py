"""A rolling replay's plan: Qlib ``Rolling``'s windows over a workflow, the replay's identity, its registry names.

A replay retrains a workflow on every window Qlib's ``RollingGen(step, rtype)`` generates over the
YAML's segments (each test segment ``step`` trading days, from the test start to its end or
``test_end``), with the label rewritten for ``horizon`` as ``qlib.contrib.rolling.base.Rolling`` does.
Each window is truncated by the shared look-ahead rule (:func:`tasks.core.windows.placement.truncate_window`):
``horizon + 1`` days in ``fixed`` mode (Qlib's ``Rolling``), ``h + 1`` in ``refit`` mode, ``h`` being
the rewritten label's look-ahead (``horizon + 1``).

Replay versions live under a derived model name, ``{model_name}.replay-{replay_id}`` (see
:mod:`registry.replays`), so the live name's newest version, its gate, its champion and its
``keep_last`` never see them. The replay id hashes the resolved task, the period, the step, the kind,
the horizon, the processors mode and the data version: the same replay re-run finds its windows.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from registry.replays import replay_model_name
from registry.settings import Settings
from tasks.core.qlib.workflow_config import WorkflowConfig, WorkflowConfigError

Processors = Literal["refit", "fixed"]
Kind = Literal["sliding", "expanding"]


class ReplaySpec(BaseModel):
    """What to replay: Qlib ``Rolling``'s parameters plus the processors mode."""

    step: int = Field(20, ge=1, le=10_000, description="Trading days per test segment (Qlib Rolling's step).")
    kind: Kind = Field("expanding", description="Qlib's ROLL_EX (expanding train start) or ROLL_SD (sliding).")
    horizon: int | None = Field(
        20, ge=1, le=1_000,
        description="Rewrites the label as Ref($close, -(horizon+1))/Ref($close, -1) - 1; None keeps the YAML's label.",
    )
    train_start: str | None = Field(None, description="Overrides the train segment's start (YYYY-MM-DD).")
    test_end: str | None = Field(None, description="Overrides the test segment's end (YYYY-MM-DD).")
    processors: Processors = Field(
        "refit", description="refit: processors fitted on each window's train span; fixed: once on the YAML's fit span."
    )


class Window(BaseModel):
    """One window of a replay: its index (1-based), truncated segments and processors' fit span."""

    index: int
    segments: dict[str, list[str]]
    fit_start_time: str
    fit_end_time: str

    @property
    def version(self) -> str:
        """The registry version of this window (one per window, so a re-run can never register it twice)."""
        return f"{self.index}.0.0"

    def segment_tuples(self) -> dict[str, tuple[str, str]]:
        return {k: (v[0], v[1]) for k, v in self.segments.items()}


class ReplayPlan(BaseModel):
    """Everything a worker needs for a window, picklable and free of Qlib objects."""

    replay_id: str
    model_name: str
    replay_name: str
    spec: ReplaySpec
    task: dict[str, Any]  # the resolved {model, dataset} with the rewritten label and handler times
    qlib_init: dict[str, Any]
    port_analysis: dict[str, Any] | None
    truncation_days: int
    data_version: str
    windows: list[Window]
    settings: Settings
    config_source: str | None = None

    @property
    def handler_config(self) -> dict[str, Any]:
        return dict(self.task["dataset"]["kwargs"]["handler"])


def horizon_label(horizon: int) -> str:
    """Qlib ``Rolling``'s label for ``horizon`` (it rewrites the handler's ``label`` kwarg exactly so)."""
    return f"Ref($close, -{horizon + 1}) / Ref($close, -1) - 1"


def replay_task(cfg: WorkflowConfig, spec: ReplaySpec) -> dict[str, Any]:
    """The ``{model, dataset}`` task a replay rolls: label rewritten, period overrides applied."""
    task = {"model": copy.deepcopy(cfg.model), "dataset": copy.deepcopy(cfg.dataset)}
    kwargs = task["dataset"].setdefault("kwargs", {})
    handler = kwargs.get("handler")
    if not isinstance(handler, dict):
        raise WorkflowConfigError(f"{cfg.source}: a replay needs the handler as a {{class, kwargs}} spec, not {handler!r}")
    segments = kwargs.get("segments") or {}
    if "train" not in segments or "test" not in segments:
        raise WorkflowConfigError(f"{cfg.source}: a replay needs 'train' and 'test' segments")
    handler_kwargs = handler.setdefault("kwargs", {})
    if spec.horizon is not None:
        handler_kwargs["label"] = [horizon_label(spec.horizon)]
    segments = {k: [str(v[0]), str(v[1])] for k, v in segments.items()}
    if spec.train_start is not None:
        segments["train"][0] = spec.train_start
    if spec.test_end is not None:
        segments["test"][1] = spec.test_end
    kwargs["segments"] = segments
    for key in ("start_time", "end_time", "fit_start_time", "fit_end_time"):
        if handler_kwargs.get(key) is not None:
            handler_kwargs[key] = str(handler_kwargs[key])
    return task


def truncation_days(task: dict[str, Any], spec: ReplaySpec) -> int:
    """Days the train/valid segments end before each test start (see the module docstring)."""
    if spec.processors == "fixed" and spec.horizon is not None:
        return spec.horizon + 1  # Qlib Rolling's RollingGen(trunc_days=horizon + 1)
    from tasks.core.qlib.workflow_config import _label_expressions
    from tasks.core.windows.placement import label_horizon

    labels = task["dataset"]["kwargs"]["handler"]["kwargs"].get("label")
    return label_horizon(_label_expressions(labels)) + 1


def generate_windows(task: dict[str, Any], spec: ReplaySpec, days: int) -> list[Window]:
    """Qlib's ``RollingGen(step, rtype)`` over the task's segments, each window through the shared truncation."""
    from qlib.workflow.task.gen import RollingGen

    from tasks.core.windows.placement import WindowError, time_adjuster, truncate_window

    rtype = RollingGen.ROLL_SD if spec.kind == "sliding" else RollingGen.ROLL_EX
    generator = RollingGen(step=spec.step, rtype=rtype, ds_extra_mod_func=None, trunc_days=None)
    adjuster = time_adjuster(None)
    period_end = adjuster.align_time(task["dataset"]["kwargs"]["segments"]["test"][1], tp_type="end").date().isoformat()
    windows: list[Window] = []
    for index, rolled in enumerate(generator.generate(copy.deepcopy(task)), start=1):
        try:
            truncated = truncate_window(adjuster, rolled["dataset"]["kwargs"]["segments"], days)
        except WindowError as exc:
            raise WorkflowConfigError(f"window {index}: {exc}") from None
        segments = truncated.segments_text()
        # The last window's test segment stops at the period's end, where Qlib's Rolling stops through its handler.
        segments["test"][1] = min(segments["test"][1], period_end)
        windows.append(Window(
            index=index, segments=segments,
            fit_start_time=truncated.fit_start_time.date().isoformat(),
            fit_end_time=truncated.fit_end_time.date().isoformat(),
        ))
    return windows


def covering_handler_times(task: dict[str, Any], windows: list[Window]) -> dict[str, Any]:
    """The task with the handler's data span widened to every window (Qlib's ``handler_mod`` rule, both ends)."""
    task = copy.deepcopy(task)
    kwargs = task["dataset"]["kwargs"]["handler"]["kwargs"]
    first = min(w.segments["train"][0] for w in windows)
    last = max(w.segments["test"][1] for w in windows)
    if kwargs.get("start_time") is None or str(kwargs["start_time"]) > first:
        kwargs["start_time"] = first
    if kwargs.get("end_time") is not None and str(kwargs["end_time"]) < last:
        kwargs["end_time"] = last
    return task


def replay_id(model_name: str, task: dict[str, Any], spec: ReplaySpec, data_version: str) -> str:
    """The replay's identity: the same configuration, period, step, mode and data give the same id."""
    identity = {"model_name": model_name, "task": task, "spec": spec.model_dump(), "data_version": data_version}
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def with_fixed_fit_span(task: dict[str, Any], windows: list[Window]) -> list[Window]:
    """`fixed` mode fits the processors once, on the handler's own fit span (the YAML's `fit_start_time` ..
    `fit_end_time`; without them, Qlib's processors fit on all the data the handler loads): every window
    records that span, the one its processors used, not its own train span."""
    kwargs = task["dataset"]["kwargs"]["handler"]["kwargs"]
    start = str(kwargs.get("fit_start_time") or kwargs["start_time"])
    end = str(kwargs.get("fit_end_time") or kwargs["end_time"])
    return [window.model_copy(update={"fit_start_time": start, "fit_end_time": end}) for window in windows]


def plan_replay(cfg: WorkflowConfig, model_name: str, spec: ReplaySpec, settings: Settings) -> ReplayPlan:
    """Windows, identity and names of a replay (Qlib is initialised on the workflow's data)."""
    from tasks.core.data.version import data_version
    from tasks.core.qlib.session import QLIB_LOCK, init_from_qlib_init

    task = replay_task(cfg, spec)
    with QLIB_LOCK:  # another flow of the process (`qmp serve`) may initialise Qlib on its own data meanwhile
        init_from_qlib_init(cfg.qlib_init, settings)
        days = truncation_days(task, spec)  # parses the label with Qlib's operators, registered by its init
        windows = generate_windows(task, spec, days)
    if not windows:
        raise WorkflowConfigError(f"{cfg.source}: the test segment gives no window")
    task = covering_handler_times(task, windows)
    if spec.processors == "fixed":
        windows = with_fixed_fit_span(task, windows)
    version = str(data_version(cfg.provider_uri))
    rid = replay_id(model_name, task, spec, version)
    return ReplayPlan(
        replay_id=rid, model_name=model_name, replay_name=replay_model_name(model_name, rid), spec=spec,
        task=task, qlib_init=cfg.qlib_init, port_analysis=cfg.port_analysis, truncation_days=days,
        data_version=version, windows=windows, settings=settings, config_source=cfg.source,
    )
