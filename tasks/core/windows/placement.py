"""Train/valid/test windows on the data calendar, without look-ahead.

One rule for every rolled window (the scheduled retrain's single window counted back from an anchor,
and the replay's many windows from Qlib's ``RollingGen``): :func:`truncate_window` takes Qlib's
calendar (a ``TimeAdjuster``), a number of truncation days and a set of segments, and returns the
truncated segments plus the handler times that go with them. It truncates with Qlib's own
``trunc_segments`` (train and valid end at least ``days`` trading days before the test start, the
rule ``TimeAdjuster.truncate`` documents) and, given the label horizon ``h``, ends the test segment at
most ``h`` trading days before the anchor, so every label in the window is known on the anchor day.

``h`` is the right side of the label expression's extended window (2 for Alpha158's
``Ref($close, -2)/Ref($close, -1) - 1``); the scheduled retrain truncates ``h + 1`` days. Qlib's
``Rolling(horizon=H)`` rewrites the label to look ``H + 1`` days ahead and truncates ``H + 1`` days,
one day fewer than ``h + 1``; pass ``days`` explicitly to reproduce it.

:func:`apply_window` is the dataset-modification function: it writes the segments into a task,
moves the handler's ``start_time``/``end_time``/``fit_start_time``/``fit_end_time`` with them (so the
processors are fitted on the window's own training span) and the backtest dates onto the test
segment. Qlib's ``handler_mod`` only extends ``end_time`` and silently skips a cached ``file://``
handler; a handler that cannot be moved is refused here instead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import pandas as pd
from qlib.workflow.task.gen import trunc_segments
from qlib.workflow.task.utils import TimeAdjuster

from tasks.core.errors import PipelineInputError

Segment = tuple[pd.Timestamp, pd.Timestamp]


class WindowError(PipelineInputError):
    """A window cannot be placed on the calendar (the message says what is missing)."""


class CalendarAdjuster(TimeAdjuster):
    """Qlib's ``TimeAdjuster`` over a calendar given as dates (Qlib's is read with ``D.calendar``)."""

    def __init__(self, calendar: Iterable[Any]) -> None:
        self._future = False
        self.cals = list(pd.DatetimeIndex(list(calendar)))
        if not self.cals:
            raise WindowError("the data calendar is empty")


def time_adjuster(calendar: TimeAdjuster | Iterable[Any] | None = None) -> TimeAdjuster:
    """``calendar`` as a ``TimeAdjuster``; ``None`` reads the initialised Qlib data's daily calendar."""
    if isinstance(calendar, TimeAdjuster):
        return calendar
    if calendar is None:
        return TimeAdjuster(future=False)
    return CalendarAdjuster(calendar)


@dataclass(frozen=True)
class Window:
    """Segments (first and last trading day, inclusive) and the handler times that go with them."""

    segments: dict[str, Segment]
    start_time: pd.Timestamp
    end_time: pd.Timestamp
    fit_start_time: pd.Timestamp
    fit_end_time: pd.Timestamp
    trunc_days: int

    @property
    def test(self) -> Segment:
        """The test (evaluation) segment."""
        return self.segments["test"]

    def handler_times(self) -> dict[str, str]:
        """``start_time``, ``end_time``, ``fit_start_time``, ``fit_end_time`` as ISO dates."""
        return {
            "start_time": _iso(self.start_time),
            "end_time": _iso(self.end_time),
            "fit_start_time": _iso(self.fit_start_time),
            "fit_end_time": _iso(self.fit_end_time),
        }

    def segments_text(self) -> dict[str, list[str]]:
        """Segments as ISO dates, the shape a workflow YAML and the registry use."""
        return {name: [_iso(start), _iso(end)] for name, (start, end) in self.segments.items()}

    def describe(self) -> str:
        """One line: ``train 2021-03-01..2021-12-31, valid ..., test ...``."""
        return ", ".join(f"{name} {a}..{b}" for name, (a, b) in self.segments_text().items())


def _iso(day: pd.Timestamp) -> str:
    return f"{pd.Timestamp(day):%Y-%m-%d}"


def truncate_window(
    calendar: TimeAdjuster | Iterable[Any] | None,
    segments: Mapping[str, Sequence[Any]],
    days: int,
    *,
    horizon: int | None = None,
    anchor: Any = None,
    test_key: str = "test",
    train_key: str = "train",
) -> Window:
    """Align ``segments`` to the calendar, truncate them ``days`` trading days before the test start
    (Qlib's ``trunc_segments``) and, when ``horizon`` is given, end the test segment at most
    ``horizon`` trading days before ``anchor`` (default: the calendar's last day).

    The handler spans every segment; its processors are fitted on the train segment.
    """
    if days < 0:
        raise WindowError(f"truncation days must be >= 0, got {days}")
    if test_key not in segments or train_key not in segments:
        raise WindowError(
            f"segments need '{train_key}' and '{test_key}', got {', '.join(segments) or 'none'}"
        )
    ta = time_adjuster(calendar)
    aligned = _aligned(ta, segments)
    if horizon is not None:
        aligned[test_key] = _test_ending_before_horizon(ta, aligned[test_key], horizon, anchor)
    _truncate(ta, aligned, days, test_key)
    return Window(
        segments=aligned,
        start_time=min(start for start, _ in aligned.values()),
        end_time=max(end for _, end in aligned.values()),
        fit_start_time=aligned[train_key][0],
        fit_end_time=aligned[train_key][1],
        trunc_days=days,
    )


def _aligned(ta: TimeAdjuster, segments: Mapping[str, Sequence[Any]]) -> dict[str, Segment]:
    """Each segment aligned to trading days (an open end: the calendar's last day)."""
    aligned: dict[str, Segment] = {}
    for name, span in segments.items():
        start, end = ta.align_seg(tuple(span))
        if start is None:
            raise WindowError(f"segment {name} starts after the calendar's last day {_iso(ta.max())}")
        aligned[name] = (start, end if end is not None else ta.max())
    return aligned


def _test_ending_before_horizon(ta: TimeAdjuster, test: Segment, horizon: int, anchor: Any) -> Segment:
    """The test segment ended at most ``horizon`` trading days before ``anchor``: its labels are known then."""
    last = ta.align_idx(anchor if anchor is not None else ta.max(), tp_type="end") - horizon
    if last < 0:
        raise WindowError(f"no trading day {horizon} days before the anchor {anchor}")
    test_start, test_end = test
    limit = ta.get(last)
    if test_start > limit:
        raise WindowError(
            f"test segment starts {_iso(test_start)}, after {_iso(limit)}: the last day whose "
            f"{horizon}-day label is known on {_iso(ta.get(last + horizon))}"
        )
    return test_start, min(test_end, limit)


def _truncate(ta: TimeAdjuster, aligned: dict[str, Segment], days: int, test_key: str) -> None:
    """Qlib's ``trunc_segments`` in place, refused when a segment would start before the calendar or be empty."""
    try:
        trunc_segments(ta, aligned, days, test_key=test_key)
    except AssertionError:
        raise WindowError(
            f"segments {_describe(aligned)} truncated {days} days before the test start reach the calendar's "
            f"first day {_iso(ta.get(0))}: the data must start earlier"
        ) from None
    for name, (start, end) in aligned.items():
        if start > end:
            raise WindowError(
                f"segment {name} is empty after truncating {days} trading days before the test start "
                f"{_iso(aligned[test_key][0])}"
            )


def _describe(segments: Mapping[str, Segment]) -> str:
    return ", ".join(f"{name} {_iso(a)}..{_iso(b)}" for name, (a, b) in segments.items())


def scheduled_window(
    calendar: TimeAdjuster | Iterable[Any] | None,
    *,
    train_days: int,
    valid_days: int,
    test_days: int,
    horizon: int,
    lookback: int = 0,
    kind: Literal["sliding", "expanding"] = "sliding",
    anchor: date | str | pd.Timestamp | None = None,
    train_start: Any = None,
    days: int | None = None,
) -> Window:
    """The scheduled retrain's window, counted back from ``anchor`` (default: the calendar's last day).

    Test: the ``test_days`` trading days ending ``horizon`` days before the anchor. Valid: the
    ``valid_days`` days ending ``days`` (default ``horizon + 1``) days before the test start. Train:
    the ``train_days`` days before valid (``sliding``), or from ``train_start`` (``expanding``, Qlib's
    ROLL_EX: the start stays fixed; ``train_days`` is then the minimum). The features' ``lookback``
    must fit before the train start. Refused with :class:`WindowError` when the calendar is too short.
    """
    for name, value in (("train_days", train_days), ("valid_days", valid_days), ("test_days", test_days)):
        if value < 1:
            raise WindowError(f"{name} must be at least 1, got {value}")
    days = horizon + 1 if days is None else days
    ta = time_adjuster(calendar)
    anchor_idx = ta.align_idx(anchor if anchor is not None else ta.max(), tp_type="end")
    if anchor_idx < 0:
        raise WindowError(f"anchor {anchor} is before the calendar's first day {_iso(ta.get(0))}")
    test_end = anchor_idx - horizon
    test_start = test_end - test_days + 1
    valid_end = test_start - days
    valid_start = valid_end - valid_days + 1
    train_end = valid_start - 1
    train_first = train_end - train_days + 1
    # Qlib's truncate needs every segment to start after the calendar's first day.
    needed = train_first - max(lookback, 1)
    if needed < 0:
        raise WindowError(
            f"the calendar has {anchor_idx + 1} trading days up to {_iso(ta.get(anchor_idx))}; the window needs "
            f"{anchor_idx + 1 - needed} (look-back {max(lookback, 1)} + train {train_days} + valid {valid_days} "
            f"+ gap {days - 1} + test {test_days} + label horizon {horizon}): {-needed} missing"
        )
    if kind == "expanding":
        train_first = _expanding_train_first(ta, train_start, train_first, lookback, train_days)
    elif kind != "sliding":
        raise WindowError(f"window kind must be sliding or expanding, got {kind!r}")
    segments = {
        "train": (ta.get(train_first), ta.get(train_end)),
        "valid": (ta.get(valid_start), ta.get(valid_end)),
        "test": (ta.get(test_start), ta.get(test_end)),
    }
    return truncate_window(ta, segments, days, horizon=horizon, anchor=ta.get(anchor_idx))


def _expanding_train_first(
    ta: TimeAdjuster, train_start: Any, sliding_first: int, lookback: int, train_days: int
) -> int:
    """An expanding window's train start: ``train_start`` (or the first day the look-back allows), refused
    when it leaves fewer than ``train_days`` before the valid segment."""
    if train_start is None:
        return max(lookback, 1)
    fixed = ta.align_idx(train_start, tp_type="start")
    if fixed > sliding_first:
        raise WindowError(
            f"expanding train start {_iso(ta.get(fixed))} leaves fewer than train_days={train_days} "
            f"before the valid segment"
        )
    return max(fixed, max(lookback, 1))


def label_horizon(labels: Iterable[str]) -> int:
    """How many trading days ahead the labels look (the right side of their extended window)."""
    sizes = [_expression(label).get_extended_window_size()[1] for label in labels]
    if not sizes:
        raise WindowError("no label expression")
    return max(0, *sizes)


def feature_lookback(fields: Iterable[str]) -> int:
    """How many trading days of history the feature expressions read (the left side of their window)."""
    return max([0, *(_expression(field).get_extended_window_size()[0] for field in fields)])


def _expression(field: str) -> Any:
    """Qlib's parsed expression for ``field`` (``get_expression_instance``; Qlib registers its operators
    in ``qlib.init``, so Qlib must be initialised)."""
    from qlib.data.data import LocalExpressionProvider

    try:
        return LocalExpressionProvider().get_expression_instance(field)
    except (NameError, SyntaxError, AttributeError) as exc:
        raise WindowError(f"cannot parse the expression {field!r}: {exc}") from None


def handler_fields(handler: Any) -> tuple[list[str], list[str]]:
    """(feature expressions, label expressions) of a handler spec or instance, without loading data."""
    from qlib.data.dataset.handler import DataHandler
    from qlib.utils import init_instance_by_config

    if isinstance(handler, str):
        raise WindowError(
            f"handler {handler!r} is a cached file; rolling windows need a {{class, kwargs}} spec"
        )
    if isinstance(handler, Mapping):
        spec = copy.deepcopy(dict(handler))
        spec["kwargs"] = {**(spec.get("kwargs") or {}), "init_data": False}
        handler = init_instance_by_config(spec, accept_types=DataHandler)
    fields = getattr(getattr(handler, "data_loader", None), "fields", None)
    if not isinstance(fields, Mapping) or "feature" not in fields:
        raise WindowError(f"cannot read the feature expressions of handler {type(handler).__name__}")
    features = list(fields["feature"][0])
    labels = list(fields["label"][0]) if "label" in fields else []
    return features, labels


def apply_window(config: Mapping[str, Any], window: Window) -> dict[str, Any]:
    """A copy of a workflow (``{qlib_init, task, ...}``) or a task (``{model, dataset, record}``)
    whose segments, handler times and backtest dates are the window's."""
    out = copy.deepcopy(dict(config))
    task = out.get("task", out)
    kwargs = task["dataset"].setdefault("kwargs", {})
    handler = kwargs.get("handler")
    if not isinstance(handler, Mapping):
        raise WindowError(
            f"the dataset's handler {handler!r} cannot be moved to the window; give it as a {{class, kwargs}} spec"
        )
    kwargs["segments"] = {name: list(span) for name, span in window.segments_text().items()}
    handler["kwargs"] = {**(handler.get("kwargs") or {}), **window.handler_times()}
    test_start, test_end = window.segments_text()["test"]
    backtests = [out.get("port_analysis_config")] if "task" in out else []
    records = task.get("record") or []
    for record in [records] if isinstance(records, Mapping) else records:
        if isinstance(record, Mapping) and str(record.get("class", "")).endswith("PortAnaRecord"):
            backtests.append((record.get("kwargs") or {}).get("config"))
    for backtest in backtests:
        if isinstance(backtest, dict) and isinstance(backtest.get("backtest"), dict):
            backtest["backtest"].update(start_time=test_start, end_time=test_end)
    return out
