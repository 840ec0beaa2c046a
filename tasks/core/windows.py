"""The one look-ahead rule for every rolled window: segments truncated against the test start, handler times.

Both the scheduled retrain's window and every window of a rolling replay go through
:func:`truncate_window`, so the two can never disagree on look-ahead. ``days`` is the number of
trading days the train and valid segments must end before the test segment starts (Qlib's
``trunc_segments(..., days)``, the rule ``TimeAdjuster.truncate`` documents): ``h + 1`` for a label that
looks ``h`` trading days ahead; Qlib's ``Rolling`` passes ``horizon + 1``, one day less for its
rewritten label, which the replay's Qlib-compatible mode reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class TruncatedWindow:
    """A window's segments after truncation and the handler times that follow them."""

    segments: dict[str, tuple[pd.Timestamp, pd.Timestamp]]
    start_time: pd.Timestamp
    end_time: pd.Timestamp
    fit_start_time: pd.Timestamp
    fit_end_time: pd.Timestamp

    def as_text(self) -> dict[str, list[str]]:
        """The segments as ISO dates (what the registry records)."""
        return {k: [a.date().isoformat(), b.date().isoformat()] for k, (a, b) in self.segments.items()}


def calendar_adjuster(end_time: Any = None) -> Any:
    """Qlib's ``TimeAdjuster`` over the initialised data's calendar (Qlib must be initialised)."""
    from qlib.workflow.task.utils import TimeAdjuster

    return TimeAdjuster(future=True, end_time=end_time)


def truncate_window(
    segments: Mapping[str, Sequence[Any]],
    days: int,
    *,
    adjuster: Any = None,
    test_key: str = "test",
    train_key: str = "train",
) -> TruncatedWindow:
    """Align ``segments`` to the calendar and end every non-test segment ``days`` trading days before the test start."""
    from qlib.workflow.task.gen import trunc_segments

    if days < 0:
        raise ValueError(f"truncation days must be >= 0, got {days}")
    if test_key not in segments or train_key not in segments:
        raise ValueError(f"segments need '{train_key}' and '{test_key}', got {sorted(segments)}")
    ta = adjuster if adjuster is not None else calendar_adjuster()
    aligned: dict[str, Any] = ta.align_seg({k: tuple(v) for k, v in segments.items()})
    if days:
        trunc_segments(ta, aligned, days, test_key)
    spans = {k: (pd.Timestamp(a), pd.Timestamp(b)) for k, (a, b) in aligned.items()}
    train = spans[train_key]
    return TruncatedWindow(
        segments=spans,
        start_time=min(a for a, _ in spans.values()),
        end_time=max(b for _, b in spans.values()),
        fit_start_time=train[0],
        fit_end_time=train[1],
    )
