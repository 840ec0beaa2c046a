"""A drift-triggered replay's plan: its settings, where each retrain's window lies, and when the rule fires.

The drift replay covers the same period as the fixed-step replay of the same workflow and
:class:`~tasks.core.replay.plan.ReplaySpec` (the first window's test start to the last window's test end).
Its first model is the one a scheduled retrain would have trained on the day before the period; every
later one the one it would have trained on the day the drift rule fires. Each window is placed by the
scheduled retrain's own function (:func:`tasks.core.windows.placement.scheduled_window`), anchored on
that day: its test segment (``test_days`` days ending ``h`` days before the anchor, ``h`` the label's
look-ahead) is the model's evaluation, from which the rule takes its expectation; the model then predicts
from the day after the anchor until the rule fires on it.

On day D the live IC of a day is known when its label is: for the days at least ``h`` trading days
before D. :func:`first_drift` asks the registry's pure rule (:func:`registry.drift.judge_drift`) on
exactly those days, each day in turn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from registry.drift import DEFAULT_RULE, DriftResult, DriftRule, Expectation, judge_drift
from registry.replays import replay_model_name
from tasks.core.replay.plan import ReplayPlan, Window, covering_handler_times, with_fixed_fit_span


class DriftReplaySpec(BaseModel):
    """The drift rule replayed and the window each retrain trains on (the scheduled retrain's window settings)."""

    model_config = ConfigDict(frozen=True)

    rule: DriftRule = DEFAULT_RULE
    test_days: int = Field(20, ge=2, le=5_000, description="Trading days each retrain is evaluated on (its expectation).")
    valid_days: int | None = Field(None, ge=1, le=5_000, description="None: the YAML's valid segment, in trading days.")
    train_days: int | None = Field(
        None, ge=1, le=10_000,
        description="None: the YAML's train segment in trading days (sliding); from the YAML's train start (expanding).",
    )


@dataclass(frozen=True)
class Placement:
    """The trading calendar and the fixed sizes every drift window is placed with."""

    calendar: tuple[pd.Timestamp, ...]
    first: int  # the period's first day (index into the calendar)
    last: int  # the period's last day
    horizon: int  # h: the label looks this many trading days ahead
    lookback: int
    train_days: int
    valid_days: int
    test_days: int
    train_start: str

    def day(self, index: int) -> str:
        return f"{self.calendar[index]:%Y-%m-%d}"


def placement(plan: ReplayPlan, spec: DriftReplaySpec) -> Placement:
    """Calendar, period and window sizes of the drift replay of ``plan``'s period (Qlib initialised)."""
    from tasks.core.windows.placement import feature_lookback, handler_fields, label_horizon, time_adjuster

    calendar = tuple(pd.Timestamp(day) for day in time_adjuster(None).cals)
    index = {day: i for i, day in enumerate(calendar)}

    def days_in(segment: Sequence[str]) -> int:
        return sum(1 for day in calendar if pd.Timestamp(segment[0]) <= day <= pd.Timestamp(segment[1]))

    features, labels = handler_fields(plan.handler_config)
    segments = plan.task["dataset"]["kwargs"]["segments"]
    sliding = plan.spec.kind == "sliding"
    return Placement(
        calendar=calendar, first=index[pd.Timestamp(plan.windows[0].segments["test"][0])],
        last=index[pd.Timestamp(plan.windows[-1].segments["test"][1])], horizon=label_horizon(labels),
        lookback=feature_lookback(features),
        train_days=spec.train_days or (days_in(segments["train"]) if sliding else 1),
        valid_days=spec.valid_days or days_in(segments["valid"]), test_days=spec.test_days,
        train_start=str(segments["train"][0]),
    )


def drift_window(plan: ReplayPlan, place: Placement, index: int, anchor: int) -> Window:
    """Window ``index``: the scheduled retrain's window on the day ``anchor`` (refused with WindowError)."""
    from tasks.core.windows.placement import scheduled_window

    placed = scheduled_window(
        place.calendar, train_days=place.train_days, valid_days=place.valid_days, test_days=place.test_days,
        horizon=place.horizon, lookback=place.lookback, kind=plan.spec.kind, anchor=place.calendar[anchor],
        train_start=place.train_start, days=plan.truncation_days,
    )
    segments = placed.segments_text()
    window = Window(index=index, segments=segments, fit_start_time=segments["train"][0],
                    fit_end_time=segments["train"][1])
    return with_fixed_fit_span(plan.task, [window])[0] if plan.spec.processors == "fixed" else window


def drift_plan(plan: ReplayPlan, spec: DriftReplaySpec, first: Window) -> ReplayPlan:
    """The plan the drift windows train under: its own replay id and registry name, the handler's span widened
    to the first drift window (which starts before the period), windows added as the rule fires."""
    identity = json.dumps({"fixed_replay": plan.replay_id, "drift": spec.model_dump(mode="json")}, sort_keys=True)
    rid = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return plan.model_copy(update={
        "replay_id": rid, "replay_name": replay_model_name(plan.model_name, rid),
        "task": covering_handler_times(plan.task, [first, *plan.windows]), "windows": [first],
    })


def first_drift(
    model_name: str, model_id: str, live_ics: Sequence[float | None], horizon: int, expectation: Expectation | None,
    rule: DriftRule,
) -> tuple[int, DriftResult] | None:
    """The first day (offset from the model's first live day) the rule finds drift on the live ICs known that
    day (those of the days ``horizon`` or more trading days before it), with its verdict; None if it never does."""
    for day in range(horizon + rule.min_days - 1, len(live_ics)):
        verdict = judge_drift(model_name, model_id, live_ics[: day - horizon + 1], expectation, rule)
        if verdict.drifted:
            return day, verdict
    return None


def live_ic_days(ic: pd.Series, days: Sequence[Any]) -> list[float | None]:
    """``ic`` (indexed by trading day) on each of ``days`` in order; None where it has no finite value."""
    values = ic.reindex(pd.DatetimeIndex(days))
    return [None if pd.isna(v) else float(v) for v in values.to_numpy()]
