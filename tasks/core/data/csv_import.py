"""Convert a folder of per-instrument daily CSV files into a Qlib data directory.

Each ``<SYMBOL>.csv`` has a header with ``date, open, high, low, close, volume`` and optionally
``vwap`` and ``factor`` (other columns are ignored). Dates are ``YYYY-MM-DD``, strictly increasing.
An empty price cell means the stock did not trade that day (a suspension). Prices are taken as
already adjusted; a missing ``factor`` column means 1.0 and a missing ``vwap`` column stays NaN.
``change`` is computed from consecutive closes. The import is an ingest (``tasks.core.data.ingest``): the rows
are validated against the exchange's calendar and written crash-safely. A file named after the benchmark
(default ``SH000300.csv``) is written but kept out of the universes.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.data.ingest.operation import IngestOptions, IngestResult
from tasks.core.data.qlib_binary import FIELDS, prepare_output_dir, read_calendar, validate_qlib_dir
from tasks.core.errors import PipelineInputError

REQUIRED = ("date", "open", "high", "low", "close", "volume")
OPTIONAL = ("vwap", "factor")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    data_version: str | None = None
    validation: list[str] = field(default_factory=list)


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
        dates: list[date] = []
        values: list[list[float]] = []
        seen: dict[date, int] = {}
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


def _parse_date(path: Path, line: int, text: str) -> date:
    """A ``YYYY-MM-DD`` date, or an error naming the line."""
    text = text.strip()
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise CsvImportError(path, line, f"bad date {text!r} (expected YYYY-MM-DD)")


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


def _check_prices(path: Path, frame: pd.DataFrame, lines: dict[date, int]) -> None:
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
            raise CsvImportError(path, lines[day.date()], message)


def import_csv(
    src: Path,
    out: Path,
    *,
    universes: Iterable[str] = ("csi300",),
    benchmark: str | None = "SH000300",
    overwrite: bool = False,
    append: bool = False,
    progress: Callable[[int, int], None] | None = None,
    options: IngestOptions | None = None,
) -> ImportReport:
    """Convert ``src/*.csv`` into a validated Qlib data directory at ``out`` (``append``: ingest the new days)."""
    from tasks.core.data.ingest.operation import ingest
    from tasks.core.data.ingest.sources import Source

    src, out = Path(src), Path(out)
    if append and overwrite:
        raise CsvImportError(out, None, "give either --append or --overwrite, not both")
    if append and not (out / "calendars").is_dir():
        raise CsvImportError(out, None, "nothing to append to (no calendars/day.txt)")
    if not src.is_dir() or not any(src.glob("*.csv")):
        raise CsvImportError(src, None, "no *.csv files found")
    if not append:
        prepare_output_dir(out, overwrite)
    settings = replace(options or IngestOptions(), universes=tuple(universes), benchmark=benchmark,
                       overwrite=overwrite)
    result = ingest(Source("directory", str(src)), out, settings)
    if append and not result.days_added:
        raise CsvImportError(src, None, f"no rows after {result.previous_end}, the last day already in {out}")
    if progress:
        progress(result.instruments, result.instruments)
    written_benchmark = benchmark if benchmark and (src / f"{benchmark}.csv").is_file() else None
    if not append:
        validate_qlib_dir(out, benchmark=written_benchmark)
    return _report(result, universes, benchmark, written_benchmark, append)


def _report(result: IngestResult, universes: Iterable[str], benchmark: str | None, written_benchmark: str | None,
            append: bool) -> ImportReport:
    """The import's summary from the ingest's result."""
    warnings = list(result.validation.notes)
    if benchmark and not written_benchmark:
        warnings.append(f"no {benchmark}.csv: backtests against benchmark {benchmark} will fail")
    if result.skipped_rows:
        warnings.append(f"{result.skipped_rows} rows on or before {result.previous_end} change stored values and "
                        "were skipped (--corrections skip)")
    calendar = read_calendar(result.out)
    shown = calendar[-result.days_added:] if append else calendar
    instruments = result.instruments - (1 if written_benchmark else 0)
    return ImportReport(
        out=result.out, instruments=instruments, days=len(shown), start=f"{shown[0]:%Y-%m-%d}",
        end=f"{shown[-1]:%Y-%m-%d}", universes=tuple(dict.fromkeys(["all", *(u.lower() for u in universes)])),
        benchmark=written_benchmark, rows=result.rows_added, warnings=warnings, data_version=result.data_version,
        validation=result.validation.lines(),
    )
