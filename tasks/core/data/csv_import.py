"""Convert a folder of per-instrument daily CSV files into a Qlib data directory.

Each ``<SYMBOL>.csv`` has a header with ``date, open, high, low, close, volume`` and optionally
``vwap`` and ``factor`` (other columns are ignored). Dates are ``YYYY-MM-DD``, strictly increasing.
An empty price cell means the stock did not trade that day (a suspension). Prices are taken as
already adjusted; a missing ``factor`` column means 1.0 and a missing ``vwap`` column stays NaN.
``change`` is computed from consecutive closes. The calendar is the union of all files' dates.
A file named after the benchmark (default ``SH000300.csv``) is written but kept out of the universes.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.data.qlib_binary import (
    FIELDS,
    Span,
    append_days,
    prepare_output_dir,
    read_calendar,
    validate_qlib_dir,
    write_calendar,
    write_features,
    write_universe,
)
from tasks.core.errors import PipelineInputError

REQUIRED = ("date", "open", "high", "low", "close", "volume")
OPTIONAL = ("vwap", "factor")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CsvImportError(PipelineInputError):
    """A CSV file cannot be imported; the message names the file and line."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        where = f"{path} line {line}" if line else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_csv` wrote."""

    out: Path
    instruments: int
    days: int
    start: str
    end: str
    universes: tuple[str, ...]
    benchmark: str | None
    rows: int
    warnings: list[str] = field(default_factory=list)


def read_instrument_csv(path: Path) -> pd.DataFrame:
    """Parse and check one CSV file into a date-indexed frame with Qlib's field names."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise CsvImportError(
                path, 1, f"missing column(s) {', '.join(missing)} (header: {','.join(header)})"
            )
        columns = {name: header.index(name) for name in REQUIRED + OPTIONAL if name in header}
        dates: list[pd.Timestamp] = []
        values: list[list[float]] = []
        seen: dict[pd.Timestamp, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CsvImportError(path, line, f"expected {len(header)} fields, got {len(row)}")
            day = _parse_date(path, line, row[columns["date"]])
            if day in seen:
                raise CsvImportError(path, line, f"duplicate date {day:%Y-%m-%d} (first on line {seen[day]})")
            if dates and day < dates[-1]:
                raise CsvImportError(
                    path, line, f"date {day:%Y-%m-%d} comes after {dates[-1]:%Y-%m-%d}: unsorted"
                )
            seen[day] = line
            dates.append(day)
            values.append(
                [_parse_number(path, line, name, row[i]) for name, i in columns.items() if name != "date"]
            )
    if not dates:
        raise CsvImportError(path, None, "no data rows")
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(dates), columns=[c for c in columns if c != "date"])
    _check_prices(path, frame, seen)
    frame = frame.reindex(columns=[*REQUIRED[1:], *OPTIONAL])
    if "factor" not in columns:
        frame["factor"] = np.where(frame["close"].notna(), 1.0, np.nan)
    frame["change"] = frame["close"] / frame["close"].ffill().shift(1) - 1
    return frame[list(FIELDS)]


def _parse_date(path: Path, line: int, text: str) -> pd.Timestamp:
    """A ``YYYY-MM-DD`` date, or an error naming the line."""
    try:
        return pd.Timestamp(pd.to_datetime(text.strip(), format="%Y-%m-%d"))
    except ValueError:
        raise CsvImportError(path, line, f"bad date {text!r} (expected YYYY-MM-DD)") from None


def _parse_number(path: Path, line: int, column: str, text: str) -> float:
    """A finite number, NaN for an empty cell, or an error naming the line and column."""
    text = text.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise CsvImportError(path, line, f"bad value {text!r} in column '{column}'") from None
    if not math.isfinite(value):
        raise CsvImportError(path, line, f"non-finite value {text!r} in column '{column}'")
    return value


def _check_prices(path: Path, frame: pd.DataFrame, lines: dict[pd.Timestamp, int]) -> None:
    """Prices positive, volume non-negative, high not below low."""
    prices = frame.drop(columns=["volume"])
    problems = [
        (prices <= 0).any(axis=1),
        frame["volume"] < 0,
        frame["high"] < frame["low"],
    ]
    messages = ["non-positive price", "negative volume", "high below low"]
    for mask, message in zip(problems, messages, strict=True):
        if mask.any():
            day = frame.index[mask.to_numpy()][0]
            raise CsvImportError(path, lines[day], message)


def import_csv(
    src: Path,
    out: Path,
    *,
    universes: Iterable[str] = ("csi300",),
    benchmark: str | None = "SH000300",
    overwrite: bool = False,
    append: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Convert ``src/*.csv`` into a validated Qlib data directory at ``out`` (``append``: extend it)."""
    src, out = Path(src), Path(out)
    if append and overwrite:
        raise CsvImportError(out, None, "give either --append or --overwrite, not both")
    frames = _read_instruments(src)
    if append:
        return _append(src, out, frames, universes, benchmark)
    calendar = pd.DatetimeIndex(sorted(set().union(*(f.index for f in frames.values()))))
    prepare_output_dir(out, overwrite)
    write_calendar(out, calendar)
    spans: dict[str, Span] = {}
    for done, (symbol, frame) in enumerate(frames.items(), start=1):
        try:
            span = write_features(out, symbol, frame, calendar)
        except ValueError as exc:
            raise CsvImportError(src / f"{symbol}.csv", None, str(exc)) from exc
        if symbol != benchmark:
            spans[symbol] = span
        if progress:
            progress(done, len(frames))
    names = tuple(dict.fromkeys(["all", *(u.lower() for u in universes)]))
    for name in names:
        write_universe(out, name, spans)
    warnings = []
    if benchmark and benchmark not in frames:
        warnings.append(f"no {benchmark}.csv: backtests against benchmark {benchmark} will fail")
    written_benchmark = benchmark if benchmark in frames else None
    validate_qlib_dir(out, benchmark=written_benchmark)
    return ImportReport(
        out=out,
        instruments=len(spans),
        days=len(calendar),
        start=f"{calendar[0]:%Y-%m-%d}",
        end=f"{calendar[-1]:%Y-%m-%d}",
        universes=names,
        benchmark=written_benchmark,
        rows=sum(len(f) for f in frames.values()),
        warnings=warnings,
    )


def _read_instruments(src: Path) -> dict[str, pd.DataFrame]:
    """Every ``src/*.csv`` read and checked, keyed by its instrument symbol (the upper-case file name)."""
    files = sorted(p for p in src.glob("*.csv") if p.is_file()) if src.is_dir() else []
    if not files:
        raise CsvImportError(src, None, "no *.csv files found")
    frames: dict[str, pd.DataFrame] = {}
    for path in files:
        symbol = path.stem.upper()
        if not _SYMBOL.match(symbol):
            raise CsvImportError(path, None, f"file name {path.stem!r} is not a valid instrument symbol")
        if symbol in frames:
            raise CsvImportError(
                path, None, f"instrument {symbol} appears twice (file names differ only in case)"
            )
        frames[symbol] = read_instrument_csv(path)
    return frames


def _append(
    src: Path, out: Path, frames: dict[str, pd.DataFrame], universes: Iterable[str], benchmark: str | None
) -> ImportReport:
    """Append the rows after ``out``'s last calendar day; earlier rows are history and stay as stored."""
    try:
        stored = read_calendar(out)
    except ValueError as exc:
        raise CsvImportError(out, None, f"nothing to append to ({exc})") from None
    end = stored[-1]
    new = {symbol: frame.loc[frame.index > end] for symbol, frame in frames.items()}
    skipped = sum(len(frame) - len(new[symbol]) for symbol, frame in frames.items())
    days = pd.DatetimeIndex(sorted(set().union(*(f.index for f in new.values()))))
    if days.empty:
        raise CsvImportError(src, None, f"no rows after {end:%Y-%m-%d}, the last day already in {out}")
    try:
        members = ["all", *(u.lower() for u in universes)]
        spans = append_days(out, days, new, new_members=members, keep_out=[benchmark] if benchmark else [])
        validate_qlib_dir(out, benchmark=benchmark if benchmark in frames else None)
    except ValueError as exc:
        raise CsvImportError(src, None, str(exc)) from exc
    warnings = []
    if skipped:
        warnings.append(
            f"{skipped} rows on or before {end:%Y-%m-%d} skipped: --append never rewrites stored history "
            "(re-import with --overwrite to correct past values)"
        )
    return ImportReport(
        out=out,
        instruments=len([s for s in spans if s != benchmark]),
        days=len(days),
        start=f"{days[0]:%Y-%m-%d}",
        end=f"{days[-1]:%Y-%m-%d}",
        universes=tuple(dict.fromkeys(["all", *(u.lower() for u in universes)])),
        benchmark=benchmark if benchmark in frames else None,
        rows=sum(len(f) for f in new.values()),
        warnings=warnings,
    )
