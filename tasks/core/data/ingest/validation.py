"""Checks of the rows an ingest would write: the exchange calendar (missing days, rows on closed days) and each
row (duplicates, prices, volume, factor, price limits). One report: counts per check and the first offending rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.errors import PipelineInputError

ERROR, WARNING, INFO = "error", "warning", "info"
EXAMPLES = 5
#: Daily price limits by board (``cn``): STAR market and ChiNext +-20%, other A-shares +-10%.
WIDE_LIMIT_PREFIXES = ("SH688", "SZ300", "SZ301")
WIDE_LIMIT, NARROW_LIMIT = 0.20, 0.10
# Exchanges round limit prices to the cent: a move a little past the nominal limit is still a limit move.
_LIMIT_SLACK = 0.005


class IngestValidationError(PipelineInputError):
    """Rows failed validation; nothing was written (the message names the first offending rows)."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class Check:
    """One check's outcome: how many rows (or days) failed and the first few, as ``instrument day column``."""

    name: str
    level: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Every check that ran, in order, plus notes (calendar approximations)."""

    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, level: str, offending: list[str], count: int | None = None) -> None:
        self.checks.append(Check(name, level, len(offending) if count is None else count, offending[:EXAMPLES]))

    def failed(self, level: str) -> list[Check]:
        return [check for check in self.checks if check.level == level and check.count]

    def summary(self) -> dict[str, Any]:
        """Plain data for the data version's record."""
        return {
            "checks": {check.name: {"level": check.level, "count": check.count, "examples": check.examples}
                       for check in self.checks},
            "notes": list(self.notes),
        }

    def lines(self) -> list[str]:
        """One line per check with a non-zero count, then the notes."""
        return [f"{check.level}: {check.name}: {check.count} ({'; '.join(check.examples)})"
                for check in self.checks if check.count] + [f"warning: {note}" for note in self.notes]

    def raise_if_errors(self) -> None:
        errors = self.failed(ERROR)
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more failed checks)" if len(errors) > 1 else ""
            raise IngestValidationError(
                f"validation failed, nothing written: {first.name}: {first.count}, first {'; '.join(first.examples)}{more}",
                self,
            )


def check_calendar(
    report: ValidationReport, rows: pd.DataFrame, expected: pd.DatetimeIndex | None, *, allow_missing_days: bool
) -> pd.DatetimeIndex:
    """Rows on closed days are errors; trading days without any row are errors unless allowed. Returns the days to
    write: the expected trading days up to the last day with rows (the source's days for a source calendar)."""
    present = pd.DatetimeIndex(rows["date"].unique()).sort_values()
    if expected is None:
        return present
    closed = present.difference(expected)
    report.add("rows on non-trading days", ERROR, [f"{day:%Y-%m-%d}" for day in closed],
               int(rows["date"].isin(closed).sum()))
    days = expected[expected <= present.max()] if len(present) else expected[:0]
    missing = days.difference(present)
    report.add("trading days missing in the source", WARNING if allow_missing_days else ERROR,
               [f"{day:%Y-%m-%d}" for day in missing])
    return days


def check_suspensions(report: ValidationReport, rows: pd.DataFrame, days: pd.DatetimeIndex, known: set[str]) -> None:
    """Per instrument, trading days without its row (suspensions) are allowed and counted."""
    on_days = rows.loc[rows["date"].isin(days)]
    spans = rows.groupby("instrument")["date"].agg(["min", "max"])
    spans["first"] = spans["min"].where(~spans.index.isin(list(known)), days.min())
    expected = days.searchsorted(spans["max"], side="right") - days.searchsorted(spans["first"], side="left")
    present = on_days.groupby("instrument")["date"].nunique().reindex(spans.index, fill_value=0)
    absent_counts = np.maximum(expected - present.to_numpy(), 0)
    offending: list[str] = []
    for instrument in spans.index[absent_counts > 0]:  # the examples: only instruments with a suspension
        if len(offending) >= EXAMPLES:
            break
        first, last = spans.at[instrument, "first"], spans.at[instrument, "max"]
        dates = pd.DatetimeIndex(on_days.loc[on_days["instrument"] == instrument, "date"])
        absent = days[(days >= first) & (days <= last)].difference(dates)
        offending.extend(f"{instrument} {day:%Y-%m-%d}" for day in absent[:EXAMPLES])
    report.add("instrument days without a row (suspensions)", INFO, offending[:EXAMPLES], int(absent_counts.sum()))


def check_rows(report: ValidationReport, rows: pd.DataFrame, previous_close: pd.Series, region: str) -> None:
    """The row checks; ``previous_close`` is each instrument's last stored close (for the first day's move)."""
    duplicated = rows.duplicated(["instrument", "date"], keep="first")
    report.add("duplicate rows", ERROR, _where(rows, duplicated, "date"), int(duplicated.sum()))
    for column in ("open", "high", "low", "close"):
        _flag(report, rows, "NaN price", rows[column].isna(), column)
    for column in ("open", "high", "low", "close", "vwap"):
        _flag(report, rows, "non-positive price", rows[column] <= 0, column)
    _flag(report, rows, "high below low", rows["high"] < rows["low"], "high")
    _flag(report, rows, "close outside [low, high]", (rows["close"] < rows["low"]) | (rows["close"] > rows["high"]),
          "close")
    _flag(report, rows, "negative volume", rows["volume"] < 0, "volume")
    _flag(report, rows, "non-positive factor", rows["factor"] <= 0, "factor")
    _merge_same_names(report)
    if region == "cn":
        moves = _adjusted_moves(rows, previous_close)
        limits = np.where(rows["instrument"].str.startswith(WIDE_LIMIT_PREFIXES), WIDE_LIMIT, NARROW_LIMIT)
        _flag(report, rows, "move beyond the board's price limit", moves.abs() > limits + _LIMIT_SLACK, "close",
              level=WARNING)


def _adjusted_moves(rows: pd.DataFrame, previous_close: pd.Series) -> pd.Series:
    """Each row's adjusted close over the instrument's previous adjusted close, minus one."""
    close = rows["close"]
    before = close.groupby(rows["instrument"]).shift(1)
    first = before.isna()
    before = before.where(~first, rows["instrument"].map(previous_close))
    return close / before - 1


def _flag(report: ValidationReport, rows: pd.DataFrame, name: str, mask: pd.Series, column: str,
          level: str = ERROR) -> None:
    mask = mask.fillna(False).astype(bool)
    report.add(name, level, _where(rows, mask, column), int(mask.sum()))


def _merge_same_names(report: ValidationReport) -> None:
    """One entry per check name (a check run on several columns sums its counts)."""
    merged: dict[str, Check] = {}
    for check in report.checks:
        if check.name in merged:
            target = merged[check.name]
            target.count += check.count
            target.examples = (target.examples + check.examples)[:EXAMPLES]
        else:
            merged[check.name] = check
    report.checks = list(merged.values())


def _where(rows: pd.DataFrame, mask: pd.Series, column: str) -> list[str]:
    hits = rows.loc[mask.to_numpy()].head(EXAMPLES)
    return [f"{row.instrument} {row.date:%Y-%m-%d} {column}" for row in hits.itertuples()]
