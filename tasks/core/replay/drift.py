"""The drift-triggered replay: one model at a time, scored day by day out of sample, retrained when the rule fires.

Window by window (see :mod:`tasks.core.replay.drift_plan` for where each lies): the window is trained, evaluated
on its test segment and registered by the fixed-step replay's own :func:`~tasks.core.replay.window.run_window`
(a re-run reloads it); its expectation is :func:`registry.drift.expectation_of` its daily IC there; it then
predicts every day from the day after its anchor to the period's end, and :func:`~tasks.core.replay.drift_plan.first_drift`
finds the first day the rule fires on what is known that day. The model's predictions stop on that day, the
next window is anchored on it, and so on to the period's end. The models' out-of-sample predictions are
combined and evaluated as the fixed-step replay's windows are (:func:`~tasks.core.replay.result.combine`,
:func:`~tasks.core.replay.result.evaluate_combined`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from registry.drift import DriftResult, Expectation, expectation_of
from registry.series import DAILY_IC
from tasks.core.replay.drift_plan import (
    DriftReplaySpec,
    Placement,
    drift_plan,
    drift_window,
    first_drift,
    live_ic_days,
    placement,
)
from tasks.core.replay.plan import ReplayPlan, Window
from tasks.core.replay.window import WindowResult, run_window


class DriftStep(BaseModel):
    """One model of a drift replay: its window, expectation, the days it was live and the verdict that ended them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    window: Window
    result: WindowResult  # pred/label: the live days' predictions and raw label
    evaluation_ic: float
    expectation: Expectation | None
    live: list[str]  # first and last live day
    live_ic: float
    drift: DriftResult | None  # the verdict on the day the rule fired, None when it never did


def live_predictions(plan: ReplayPlan, window: Window, model_id: str, first: str, last: str) -> tuple[Any, Any]:
    """The registered model of ``window`` scored on ``first``..``last``: (predictions, raw label)."""
    from tasks.core.lifecycle import open_registry
    from tasks.core.qlib.evaluation import predict, raw_label
    from tasks.core.replay.window import window_dataset

    model = open_registry(plan.settings).get_model(model_id)
    live = window.model_copy(update={"segments": {**window.segments, "test": [first, last]}})
    dataset, _, _ = window_dataset(plan, live)
    return predict(model, dataset, "test"), raw_label(dataset, "test")


def run_drift_step(plan: ReplayPlan, place: Placement, window: Window, anchor: int, spec: DriftReplaySpec) -> DriftStep:
    """Train (or reload) ``window``, score it live from the day after ``anchor`` until the rule fires."""
    from tasks.core.qlib.evaluation import daily_ics, daily_series

    result = run_window(plan, window)
    evaluated, _ = daily_ics(result.pred.iloc[:, 0], result.label.iloc[:, 0])
    expectation = expectation_of({DAILY_IC: daily_series(evaluated)}, result.metrics)
    days = place.calendar[anchor + 1: place.last + 1]
    pred, label = live_predictions(plan, window, result.model_id, place.day(anchor + 1), place.day(place.last))
    ic, _ = daily_ics(pred.iloc[:, 0], label.iloc[:, 0])
    fired = first_drift(plan.model_name, result.model_id, live_ic_days(ic, days), place.horizon, expectation, spec.rule)
    end = days[fired[0]] if fired else days[-1]
    kept = pred.index.get_level_values("datetime") <= end
    live_ics = ic[ic.index <= end]
    return DriftStep(
        window=window, result=result.model_copy(update={"pred": pred[kept], "label": label[kept]}),
        evaluation_ic=result.metrics.get("ic_mean", float("nan")), expectation=expectation,
        live=[place.day(anchor + 1), f"{end:%Y-%m-%d}"], live_ic=float(live_ics.mean()),
        drift=fired[1] if fired else None,
    )


@dataclass(frozen=True)
class DriftRun:
    """A drift replay's windows' plan, the label look-ahead the rule waited for, and one step per model."""

    plan: ReplayPlan
    horizon: int
    steps: list[DriftStep]


def replay_drift(plan: ReplayPlan, spec: DriftReplaySpec, log: Any = None) -> DriftRun:
    """The drift replay of ``plan``'s period (Qlib initialised)."""
    from tasks.core.replay.features import ensure_features

    place = placement(plan, spec)
    anchor = place.first - 1
    first = drift_window(plan, place, 1, anchor)
    drifting = drift_plan(plan, spec, first)
    ensure_features(drifting)
    steps: list[DriftStep] = []
    window = first
    while True:
        step = run_drift_step(drifting, place, window, anchor, spec)
        steps.append(step)
        if log is not None:
            log.info("drift window %d: %s live %s .. %s, live ic %.4f%s", window.index, step.result.model_id,
                     *step.live, step.live_ic, f", drift: {step.drift.reasons[0]}" if step.drift else "")
        anchor = place.calendar.index(pd.Timestamp(step.live[1]))
        if step.drift is None or anchor >= place.last:
            return DriftRun(drifting, place.horizon, steps)
        window = drift_window(drifting, place, window.index + 1, anchor)
        drifting = drifting.model_copy(update={"windows": [*drifting.windows, window]})
