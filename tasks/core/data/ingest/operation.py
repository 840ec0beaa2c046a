"""One ingest: read a source's rows, validate them against the trading calendar, decide on corrections, commit."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.data.ingest.calendar import (
    REGION_EXCHANGES,
    ExpectedDays,
    calendar_name,
    declared_calendar,
    expected_days,
)
from tasks.core.data.ingest.commit import WritePlan, commit, ingest_lock, recover
from tasks.core.data.ingest.corrections import Corrections, find_corrections
from tasks.core.data.ingest.sources import SOURCE_FIELDS, Source, read_rows
from tasks.core.data.ingest.validation import ValidationReport, check_calendar, check_rows, check_suspensions
from tasks.core.data.qlib_binary import FREQ, QlibDataError, prepare_output_dir, read_calendar, read_field
from tasks.core.data.version import data_version


@dataclass(frozen=True)
class IngestOptions:
    """How to ingest: the region (price limits, default calendar), the calendar, what to allow, where new listings go."""

    region: str = "cn"
    calendar: str | None = None
    holidays: Path | None = None
    allow_missing_days: bool = False
    corrections: str = "refuse"
    universes: tuple[str, ...] = ("csi300",)
    benchmark: str | None = "SH000300"
    overwrite: bool = False

    def calendar_for(self, out: Path) -> str:
        """The calendar given, else the one ``out`` declares, else the region's exchange."""
        return calendar_name(self.calendar or declared_calendar(out) or REGION_EXCHANGES.get(self.region, "XSHG"))


@dataclass
class IngestResult:
    """What one ingest did; ``data_version`` is the directory's version after it (None when nothing was written)."""

    out: Path
    source: str
    calendar: str
    previous_end: date | None
    calendar_end: date | None
    first_day: date | None = None
    days_added: int = 0
    rows_added: int = 0
    instruments: int = 0
    new_instruments: int = 0
    skipped_rows: int = 0
    corrections: dict[str, Any] = field(default_factory=lambda: {"mode": "refuse", "rows": 0})
    validation: ValidationReport = field(default_factory=ValidationReport)
    recovery: str | None = None
    data_version: str | None = None

    @property
    def wrote(self) -> bool:
        return self.days_added > 0 or (self.corrections.get("mode") == "apply" and self.corrections.get("rows", 0) > 0)


def ingest(source: Source, out: Path, options: IngestOptions | None = None, *,
           then: Callable[[IngestResult], None] | None = None) -> IngestResult:
    """Add ``source``'s new rows (days after ``out``'s calendar end) to ``out``; nothing is written on an error.

    ``then`` runs on the result while the directory's ingest lock is still held (the data version's record: an
    ingest that follows this one then finds it); an error it raises leaves the written data in place."""
    options = options or IngestOptions()
    out = Path(out)
    created = not out.exists()
    written = False
    try:
        with ingest_lock(out):
            result = _ingest_locked(source, out, options)
            written = True
            if then is not None:
                then(result)
        return result
    except BaseException:
        if created and not written:  # nothing of a failed first ingest stays behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def _ingest_locked(source: Source, out: Path, options: IngestOptions) -> IngestResult:
    recovery = recover(out)
    calendar = _stored_calendar(out, options.overwrite)
    after = calendar[-1].date() if len(calendar) else None
    rows = read_rows(source, after)
    options = replace(options, calendar=options.calendar_for(out))
    result = _ingest_rows(out, str(source), rows, calendar, options)
    result.recovery = recovery
    if result.wrote or recovery:
        result.data_version = str(data_version(out))
    return result


def _stored_calendar(out: Path, overwrite: bool) -> pd.DatetimeIndex:
    """The directory's calendar; empty for a new directory (an existing one is cleared only when overwriting)."""
    if overwrite or not (out / "calendars" / f"{FREQ}.txt").is_file():
        prepare_output_dir(out, overwrite)
        return pd.DatetimeIndex([])
    return read_calendar(out)


def _ingest_rows(
    out: Path, source: str, rows: pd.DataFrame, calendar: pd.DatetimeIndex, options: IngestOptions
) -> IngestResult:
    after = calendar[-1] if len(calendar) else None
    new = rows.loc[rows["date"] > after] if after is not None else rows
    old = rows.loc[rows["date"] <= after] if after is not None else rows.iloc[:0]
    result = IngestResult(out, source, options.calendar_for(out), after.date() if after is not None else None,
                          after.date() if after is not None else None)
    known = _stored_instruments(out) if len(calendar) else set()
    last_closes = _last_closes(out, calendar, known & set(new["instrument"]))
    days = _validate(result.validation, out, new, calendar, known, last_closes, options)
    corrections = find_corrections(out, calendar, old, options.corrections) if len(old) else Corrections(
        options.corrections, old)
    if corrections.mode == "apply" and corrections.count:
        check_rows(result.validation, corrections.rows, pd.Series(dtype="float64"), options.region)
        result.validation.raise_if_errors()
    result.corrections = corrections.summary()
    result.skipped_rows = corrections.count if corrections.mode == "skip" else 0
    if not len(days) and not (corrections.mode == "apply" and corrections.count):
        return result
    plan = replace(_plan(new, days, known, corrections, options), last_closes=last_closes.to_dict())
    commit(out, calendar, plan)
    result.calendar_end = days[-1].date() if len(days) else result.previous_end
    result.first_day = days[0].date() if len(days) else None
    result.days_added, result.rows_added = len(days), len(new)
    result.instruments = int(new["instrument"].nunique())
    result.new_instruments = len(plan.listings)
    return result


def _validate(report: ValidationReport, out: Path, new: pd.DataFrame, calendar: pd.DatetimeIndex, known: set[str],
              last_closes: pd.Series, options: IngestOptions) -> pd.DatetimeIndex:
    """The calendar and row checks on the new rows; raises on any error; returns the trading days to write."""
    if new.empty:
        return pd.DatetimeIndex([])
    first = (calendar[-1] + timedelta(days=1)).date() if len(calendar) else new["date"].min().date()
    expected: ExpectedDays = expected_days(options.calendar_for(out), first, new["date"].max().date(), options.holidays)
    report.notes.extend(expected.warnings)
    days = check_calendar(report, new, expected.days, allow_missing_days=options.allow_missing_days)
    check_suspensions(report, new, days, known)
    check_rows(report, new, last_closes, options.region)
    report.raise_if_errors()
    return days


def _plan(new: pd.DataFrame, days: pd.DatetimeIndex, known: set[str], corrections: Corrections,
          options: IngestOptions) -> WritePlan:
    """Per instrument: a rewrite (applied corrections), an append (stored series) or a listing (no stored series)."""
    rewritten = set(corrections.rows["instrument"]) if corrections.mode == "apply" else set()
    plan = WritePlan(days, add_to=tuple(dict.fromkeys(["all", *(u.lower() for u in options.universes)])),
                     outside=frozenset({options.benchmark.upper()} if options.benchmark else set()))
    wanted = pd.concat([corrections.rows, new]) if rewritten else new
    ordered = wanted.sort_values(["instrument", "date"], kind="stable")  # one sort, not one per instrument
    indexed = ordered.set_index("date")[["instrument", *SOURCE_FIELDS]]
    for symbol, rows in indexed.groupby("instrument", sort=True):
        rows = rows.drop(columns="instrument")
        if symbol in rewritten:
            plan.rewrites[symbol] = rows
        elif symbol in known:
            plan.appends[symbol] = rows
        else:
            plan.listings[symbol] = rows
    return plan


def _stored_instruments(out: Path) -> set[str]:
    features = out / "features"
    return {path.name.upper() for path in features.iterdir() if (path / f"close.{FREQ}.bin").is_file()} \
        if features.is_dir() else set()


def _last_closes(out: Path, calendar: pd.DatetimeIndex, symbols: set[str]) -> pd.Series:
    """Each instrument's last stored close (the base of its first new day's move)."""
    closes = {}
    for symbol in sorted(symbols):
        try:
            closes[symbol] = float(read_field(out, symbol, "close", calendar).dropna().iloc[-1])
        except (QlibDataError, IndexError):
            continue
    return pd.Series(closes, dtype="float64")
