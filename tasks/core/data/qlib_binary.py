"""Writer and validator for Qlib's file-based binary data format (daily frequency).

Layout: ``calendars/day.txt`` (one date a line), ``instruments/<universe>.txt`` (symbol, first and
last date, tab-separated) and ``features/<symbol lower-case>/<field>.day.bin``. Each bin file is
little-endian float32: the first value is the index of the series' first date in the calendar,
then one value per calendar day. Qlib fails silently on small deviations from this, so
:func:`validate_qlib_dir` checks every file we write.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import PipelineInputError

#: Every field Alpha158 / Alpha360 and the backtest's exchange read.
FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "factor", "change")
PRICE_FIELDS = frozenset({"open", "high", "low", "close", "vwap", "factor"})
FREQ = "day"
_BIN_DTYPE = np.dtype("<f4")
# float64 bytes read as float32 give zeros and values like 1e+38; real prices and volumes never do.
_IMPLAUSIBLE = 1e15


class QlibDataError(PipelineInputError):
    """A Qlib data directory is malformed (the message names the file)."""


@dataclass(frozen=True)
class Span:
    """First and last calendar day an instrument belongs to a universe."""

    start: pd.Timestamp
    end: pd.Timestamp


def prepare_output_dir(out: Path, overwrite: bool = False) -> None:
    """Create ``out``; refuse to mix with existing Qlib data (stale instruments would linger) unless overwriting."""
    existing = [out / name for name in ("calendars", "instruments", "features") if (out / name).exists()]
    if existing and not overwrite:
        raise QlibDataError(f"{out}: already holds Qlib data; overwrite it explicitly (--overwrite)")
    for path in existing:
        shutil.rmtree(path)
    out.mkdir(parents=True, exist_ok=True)


def write_calendar(out: Path, calendar: pd.DatetimeIndex) -> None:
    """Write ``calendars/day.txt`` from a sorted, unique DatetimeIndex."""
    if not calendar.is_monotonic_increasing or not calendar.is_unique:
        raise QlibDataError("calendar must be strictly increasing (Qlib returns no rows otherwise)")
    path = out / "calendars" / f"{FREQ}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{day:%Y-%m-%d}\n" for day in calendar))


def write_universe(out: Path, name: str, members: Mapping[str, Span]) -> None:
    """Write ``instruments/<name>.txt``: one line per symbol with its membership span."""
    path = out / "instruments" / f"{name.lower()}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (
        f"{sym.upper()}\t{span.start:%Y-%m-%d}\t{span.end:%Y-%m-%d}\n"
        for sym, span in sorted(members.items())
    )
    path.write_text("".join(lines))


def write_features(out: Path, symbol: str, frame: pd.DataFrame, calendar: pd.DatetimeIndex) -> Span:
    """Write one bin file per column of ``frame`` (indexed by date) for ``symbol``; return its trading span."""
    traded = frame.dropna(how="all")
    if traded.empty:
        raise QlibDataError(f"instrument {symbol}: no rows with data")
    unknown = traded.index.difference(calendar)
    if len(unknown):
        raise QlibDataError(f"instrument {symbol}: dates not in the calendar, first {unknown[0]:%Y-%m-%d}")
    first, last = calendar.get_indexer([traded.index[0], traded.index[-1]])
    # Rows the instrument lacks inside its span (suspensions, missing days) become NaN.
    window = traded.reindex(calendar[first : last + 1])
    directory = out / "features" / symbol.lower()
    directory.mkdir(parents=True, exist_ok=True)
    for field in frame.columns:
        values = window[field].to_numpy(dtype=np.float64)
        payload = np.concatenate([[float(first)], values]).astype(_BIN_DTYPE)
        (directory / f"{field.lower()}.{FREQ}.bin").write_bytes(payload.tobytes())
    return Span(calendar[first], calendar[last])


def read_calendar(out: Path) -> pd.DatetimeIndex:
    """Read and check ``calendars/day.txt``."""
    path = out / "calendars" / f"{FREQ}.txt"
    if not path.is_file():
        raise QlibDataError(f"{path}: calendar file missing")
    lines = path.read_text().split()
    try:
        days = pd.DatetimeIndex(pd.to_datetime(lines, format="%Y-%m-%d"))
    except ValueError as exc:
        raise QlibDataError(f"{path}: unparseable date ({exc})") from exc
    if len(days) < 2:
        raise QlibDataError(f"{path}: fewer than two days")
    steps = np.diff(days.asi8)
    if (steps <= 0).any():
        line = int(np.argmax(steps <= 0)) + 2
        raise QlibDataError(f"{path} line {line}: dates not strictly increasing")
    return days


def read_universe(out: Path, name: str) -> dict[str, Span]:
    """Read and check ``instruments/<name>.txt``."""
    path = out / "instruments" / f"{name}.txt"
    members: dict[str, Span] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise QlibDataError(f"{path} line {number}: expected 3 tab-separated fields, got {len(parts)}")
        try:
            span = Span(pd.Timestamp(parts[1]), pd.Timestamp(parts[2]))
        except ValueError as exc:
            raise QlibDataError(f"{path} line {number}: bad date ({exc})") from exc
        if span.start > span.end:
            raise QlibDataError(f"{path} line {number}: start {parts[1]} after end {parts[2]}")
        members[parts[0]] = span
    return members


def read_field(out: Path, symbol: str, field: str, calendar: pd.DatetimeIndex) -> pd.Series:
    """Read one bin file back into a date-indexed float32 Series, checking its header and length."""
    path = out / "features" / symbol.lower() / f"{field}.{FREQ}.bin"
    if not path.is_file():
        raise QlibDataError(f"{path}: field file missing (Qlib would return an all-NaN column)")
    raw = path.read_bytes()
    if len(raw) < 4 or len(raw) % 4:
        raise QlibDataError(f"{path}: size {len(raw)} bytes is not a positive multiple of 4")
    data = np.frombuffer(raw, dtype=_BIN_DTYPE)
    start = float(data[0])
    if not start.is_integer() or not 0 <= start < len(calendar):
        raise QlibDataError(
            f"{path}: start index {start} is not a calendar position (0..{len(calendar) - 1})"
        )
    values = data[1:]
    if int(start) + len(values) > len(calendar):
        raise QlibDataError(f"{path}: {len(values)} values from index {int(start)} run past the calendar end")
    finite = values[~np.isnan(values)]
    if finite.size and np.abs(finite).max() > _IMPLAUSIBLE:
        raise QlibDataError(
            f"{path}: implausible magnitude {np.abs(finite).max():g} (float64 written as float32?)"
        )
    if field in PRICE_FIELDS and (finite <= 0).any():
        raise QlibDataError(f"{path}: non-positive price values (float64 written as float32?)")
    return pd.Series(values, index=calendar[int(start) : int(start) + len(values)], name=field)


def validate_qlib_dir(out: Path, *, benchmark: str | None = None, fields: Iterable[str] = FIELDS) -> None:
    """Check a data directory against Qlib's silent failure modes; raise QlibDataError naming the file."""
    calendar = read_calendar(out)
    universes = sorted((out / "instruments").glob("*.txt"))
    if not any(path.stem == "all" for path in universes):
        raise QlibDataError(f"{out / 'instruments' / 'all.txt'}: universe file missing")
    for path in universes:
        if path.name != path.name.lower():
            raise QlibDataError(f"{path}: universe file names must be lower-case")
    for path in (out / "features").iterdir():
        if path.name != path.name.lower():
            raise QlibDataError(f"{path}: feature directories must be lower-case or Qlib ignores them")
    symbols = {sym for path in universes for sym in read_universe(out, path.stem)}
    for symbol in sorted(symbols | ({benchmark} if benchmark else set())):
        for field in fields:
            series = read_field(out, symbol, field, calendar)
            if field == "close" and series.isna().all():
                raise QlibDataError(f"{out / 'features' / symbol.lower()}: close is all NaN")


def stored_span(out: Path, symbol: str, calendar: pd.DatetimeIndex) -> tuple[int, int] | None:
    """(first, last) calendar index of ``symbol``'s stored close series, or None if it has none."""
    path = out / "features" / symbol.lower() / f"close.{FREQ}.bin"
    if not path.is_file():
        return None
    size = path.stat().st_size  # the header and the length are enough: the values are not read
    with path.open("rb") as handle:
        header = np.frombuffer(handle.read(4), dtype=_BIN_DTYPE)
    if size < 8 or size % 4 or not float(header[0]).is_integer():
        raise QlibDataError(f"{path}: size {size} bytes or start index is not a stored series")
    first, values = int(header[0]), size // 4 - 1
    if first < 0 or first + values > len(calendar):
        raise QlibDataError(f"{path}: {values} values from index {first} run past the calendar end")
    return first, first + values - 1


def append_days(
    out: Path,
    days: pd.DatetimeIndex,
    frames: Mapping[str, pd.DataFrame],
    *,
    new_members: Iterable[str] = (),
    keep_out: Iterable[str] = (),
) -> dict[str, Span]:
    """Extend a Qlib data directory with trading ``days`` after its calendar's last day.

    Every existing byte of the calendar and of each feature file stays as it is: values are appended
    (a series that stopped before the old last day is padded with NaN first). ``change`` is recomputed
    across the boundary from the last stored close. Universe members that were listed until their
    series' old end are extended to the new end; instruments without stored data are written whole
    and added to the universes named in ``new_members`` (except those in ``keep_out``, e.g. the
    benchmark). Returns the new spans of the written instruments.
    """
    calendar = read_calendar(out)
    days = pd.DatetimeIndex(days)
    _check_appended_days(out, calendar, days, frames)
    full = calendar.append(days)
    old_spans = {symbol: stored_span(out, symbol, calendar) for symbol in frames}
    spans: dict[str, Span] = {}
    for symbol, frame in frames.items():
        traded = frame.dropna(how="all")
        if traded.empty:
            continue
        stored = old_spans[symbol]
        if stored is None:
            spans[symbol] = write_features(out, symbol, frame, full)
        else:
            spans[symbol] = append_instrument_days(out, symbol, frame.reindex(days[: days.get_loc(traded.index[-1]) + 1]),
                                               calendar, stored)
    with (out / "calendars" / f"{FREQ}.txt").open("a") as handle:
        handle.write("".join(f"{day:%Y-%m-%d}\n" for day in days))
    _extend_universes(out, calendar, spans, old_spans, set(new_members), {symbol.upper() for symbol in keep_out})
    return spans


def _check_appended_days(
    out: Path, calendar: pd.DatetimeIndex, days: pd.DatetimeIndex, frames: Mapping[str, pd.DataFrame]
) -> None:
    """Refuse days that are not strictly after the calendar, or rows that are not on those days."""
    if days.empty:
        raise QlibDataError(f"{out}: no new trading days to append after {calendar[-1]:%Y-%m-%d}")
    if not days.is_monotonic_increasing or not days.is_unique or days[0] <= calendar[-1]:
        raise QlibDataError(
            f"{out}: appended days must be strictly increasing and after {calendar[-1]:%Y-%m-%d}, "
            f"got {days[0]:%Y-%m-%d}"
        )
    for symbol, frame in frames.items():
        unknown = frame.index.difference(days)
        if len(unknown):
            raise QlibDataError(
                f"instrument {symbol}: appended rows must be on the new days, got {unknown[0]:%Y-%m-%d}"
            )


def append_instrument_days(
    out: Path, symbol: str, window: pd.DataFrame, calendar: pd.DatetimeIndex, stored: tuple[int, int],
    last_close: float | None = None,
) -> Span:
    """Append ``window`` (the new days up to the instrument's last traded one) to its stored feature files,
    NaN-padded from its old end; ``change`` recomputed across the boundary from the last stored close
    (``last_close`` when the caller has read it)."""
    first, last = stored
    directory = out / "features" / symbol.lower()
    names = [str(name) for name in window.columns]
    values = window.to_numpy(dtype=np.float64, copy=True)  # one conversion; the fields by position
    if "close" in names and "change" in names:
        if last_close is None:
            stored_close = read_field(out, symbol, "close", calendar).to_numpy(dtype=np.float64)
            known = stored_close[~np.isnan(stored_close)]
            last_close = float(known[-1]) if known.size else np.nan
        closes = np.concatenate([[last_close], values[:, names.index("close")]])
        seen = np.maximum.accumulate(np.where(np.isnan(closes), 0, np.arange(len(closes))))
        before = closes[seen][:-1]  # the last known close before each day
        values[:, names.index("change")] = np.where(np.isnan(closes[1:]), np.nan, closes[1:] / before - 1)
    padding = np.full(len(calendar) - 1 - last, np.nan)
    for column, field in enumerate(names):
        path = directory / f"{field.lower()}.{FREQ}.bin"
        stored_len = (path.stat().st_size // 4 - 1) if path.is_file() else None
        if stored_len is None or first + stored_len - 1 != last:
            raise QlibDataError(f"{path}: its length does not match the close series; cannot append")
        payload = np.concatenate([padding, values[:, column]]).astype(_BIN_DTYPE)
        with path.open("ab") as handle:
            handle.write(payload.tobytes())
    return Span(calendar[first], window.index[-1])


def _extend_universes(
    out: Path, calendar: pd.DatetimeIndex, spans: dict[str, Span], old_spans: Mapping[str, tuple[int, int] | None],
    added: set[str], outside: set[str],
) -> None:
    """Extend members listed until their old end to their new end; add new instruments to the ``added``
    universes (except those ``outside``)."""
    for path in sorted((out / "instruments").glob("*.txt")):
        members = read_universe(out, path.stem)
        for symbol, span in spans.items():
            stored = old_spans.get(symbol)
            if stored is None:
                if path.stem in added and symbol.upper() not in outside:
                    members[symbol.upper()] = span
            elif symbol.upper() in members and members[symbol.upper()].end == calendar[stored[1]]:
                members[symbol.upper()] = Span(members[symbol.upper()].start, span.end)
        write_universe(out, path.stem, members)
