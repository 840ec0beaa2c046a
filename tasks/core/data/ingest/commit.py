"""Writing an ingest so that a kill at any point leaves Qlib reading exactly the old rows or exactly the new ones.

Order: a journal (what is about to change, with copies of the instruments files), corrected series to
``*.ingest-new`` files, appended tails and new instruments' files (Qlib reads a feature file only as far as the
calendar reaches, so tails past it are invisible), ``os.sync()``, the instruments files replaced (a new listing's
span starts after the old calendar, so Qlib filters it out), then the calendar replaced by an atomic rename: the
commit point. After it the corrected files are renamed into place and the journal removed. :func:`recover`, run
by every ingest under the lock, completes a committed journal or rolls an uncommitted one back.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.data.ingest.universes import updated_universes
from tasks.core.data.qlib_binary import (
    FIELDS,
    FREQ,
    Span,
    append_instrument_days,
    read_field,
    stored_span,
    write_features,
)
from tasks.core.errors import PipelineInputError
from tasks.core.files import fsync_directory, write_atomically

STATE_DIR = ".qmp-ingest"
NEW_SUFFIX = ".ingest-new"
_BIN = np.dtype("<f4")


class IngestBusyError(PipelineInputError):
    """Another ingest holds the data directory's lock."""


@dataclass
class WritePlan:
    """What one ingest writes: the new trading days and, per instrument, its rows (date-indexed frames)."""

    new_days: pd.DatetimeIndex
    appends: dict[str, pd.DataFrame] = field(default_factory=dict)
    listings: dict[str, pd.DataFrame] = field(default_factory=dict)
    rewrites: dict[str, pd.DataFrame] = field(default_factory=dict)
    add_to: tuple[str, ...] = ("all",)
    outside: frozenset[str] = frozenset()
    last_closes: Mapping[str, float] = field(default_factory=dict)  # read by the validation: not read twice


@contextmanager
def ingest_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s ingest lock (released by the kernel if the process dies); refuse when another ingest has it."""
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    path = state / "lock"
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestBusyError(f"{out}: another ingest is writing this directory (lock {path}); "
                                  "run again when it has finished") from None
        yield
    finally:
        os.close(handle)


def commit(out: Path, calendar: pd.DatetimeIndex, plan: WritePlan) -> None:
    """Write ``plan`` into ``out`` (whose calendar is ``calendar``; empty for a new directory) crash-safely."""
    full = calendar.append(plan.new_days)
    instruments = out / "instruments"
    journal: dict[str, Any] = {
        "old_end": _day(calendar), "new_end": _day(full), "committed": False,
        "appended": sorted(plan.appends), "listed": sorted(plan.listings), "rewritten": sorted(plan.rewrites),
        "universes_before": sorted(p.name for p in instruments.glob("*.txt")) if instruments.is_dir() else [],
    }
    _backup_universes(out, journal["universes_before"])
    _write_journal(out, journal)
    old_spans = {symbol: stored_span(out, symbol, calendar) for symbol in [*plan.appends, *plan.rewrites]}
    spans = _write_features(out, calendar, full, plan, old_spans)
    os.sync()
    universes = updated_universes(out, calendar, spans, old_spans, set(plan.add_to), plan.outside)
    for name, members in universes.items():
        replace_file(instruments / f"{name}.txt", _universe_text(members))
    if len(plan.new_days):
        replace_file(out / "calendars" / f"{FREQ}.txt", "".join(f"{day:%Y-%m-%d}\n" for day in full))
    journal["committed"] = True
    _write_journal(out, journal)
    _finish(out, journal)


def _write_features(out: Path, calendar: pd.DatetimeIndex, full: pd.DatetimeIndex, plan: WritePlan,
                    old_spans: Mapping[str, tuple[int, int] | None]) -> dict[str, Span]:
    """Corrected series to new files, tails appended, new instruments written whole; the new spans."""
    spans: dict[str, Span] = {}
    for symbol, rows in plan.rewrites.items():
        spans[symbol] = write_rewrite(out, symbol, rows, calendar, full)
    for symbol, rows in plan.appends.items():
        stored = old_spans[symbol]
        assert stored is not None
        last = plan.new_days.get_loc(rows.index[-1])
        window = rows.reindex(index=plan.new_days[: last + 1], columns=list(FIELDS))
        spans[symbol] = append_instrument_days(out, symbol, window, calendar, stored, plan.last_closes.get(symbol))
    for symbol, rows in plan.listings.items():
        frame = rows.reindex(columns=list(FIELDS))
        frame["change"] = frame["close"] / frame["close"].ffill().shift(1) - 1
        spans[symbol] = write_features(out, symbol, frame, full)
    return spans


def write_rewrite(out: Path, symbol: str, rows: pd.DataFrame, calendar: pd.DatetimeIndex, full: pd.DatetimeIndex
                  ) -> Span:
    """Write ``symbol``'s stored series with ``rows`` laid over it (corrections and new days) to ``*.ingest-new``
    files; ``change`` is recomputed where a close or the close before it changed."""
    stored = pd.DataFrame({name: read_field(out, symbol, name, calendar) for name in FIELDS}).astype(np.float64)
    first = int(calendar.get_loc(stored.index[0]))
    last = max(int(full.get_loc(rows.index[-1])), first + len(stored) - 1)
    merged = stored.reindex(full[first : last + 1])
    before = merged["close"].copy()
    sourced = [name for name in rows.columns if name in merged.columns and name != "change"]
    update = rows[sourced]
    keep_vwap = update["vwap"].isna() & update.index.isin(stored.index) if "vwap" in update else None
    merged.loc[update.index, sourced] = update.to_numpy()
    if keep_vwap is not None and keep_vwap.any():
        merged.loc[update.index[keep_vwap.to_numpy()], "vwap"] = stored["vwap"].reindex(update.index[keep_vwap.to_numpy()])
    moved = (merged["close"].ne(before) & merged["close"].notna()) | ~merged.index.isin(stored.index)
    recompute = moved | moved.shift(1, fill_value=False)
    change = merged["close"] / merged["close"].ffill().shift(1) - 1
    merged["change"] = np.where(recompute & merged["close"].notna(), change, merged["change"])
    directory = out / "features" / symbol.lower()
    for name in FIELDS:
        payload = np.concatenate([[float(first)], merged[name].to_numpy(dtype=np.float64)]).astype(_BIN)
        write_new_file(directory / f"{name}.{FREQ}.bin{NEW_SUFFIX}", payload.tobytes())
    return Span(full[first], merged["close"].dropna().index[-1])


def write_new_file(path: Path, payload: bytes) -> None:
    """A file that only exists under its final name after the commit (renamed in by :func:`_finish`)."""
    path.write_bytes(payload)


def replace_file(path: Path, text: str) -> None:
    """Replace ``path`` by an fsynced temporary file renamed over it (readers see the old or the new bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: temporary.write_text(text), durable=True)


def recover(out: Path) -> str | None:
    """Complete (committed) or roll back (not committed) an ingest a kill interrupted; what was done, or None."""
    journal = _read_journal(out)
    if journal is None:
        return None
    calendar_path = out / "calendars" / f"{FREQ}.txt"
    reached = journal["new_end"] != journal["old_end"] and calendar_path.is_file() and (
        calendar_path.read_text().split() or [None])[-1] == journal["new_end"]
    if journal["committed"] or reached:
        _finish(out, journal)
        return f"completed the interrupted ingest up to {journal['new_end']}"
    _roll_back(out, journal)
    return f"rolled back an interrupted ingest (the data still ends {journal['old_end']})"


def _finish(out: Path, journal: Mapping[str, Any]) -> None:
    """Rename the corrected files into place, then drop the backups and the journal."""
    for symbol in journal["rewritten"]:
        directory = out / "features" / symbol.lower()
        for path in sorted(directory.glob(f"*{NEW_SUFFIX}")):
            os.replace(path, directory / path.name.removesuffix(NEW_SUFFIX))
        fsync_directory(directory)
    shutil.rmtree(out / STATE_DIR / "backup", ignore_errors=True)
    (out / STATE_DIR / "journal.json").unlink(missing_ok=True)
    fsync_directory(out / STATE_DIR)


def _roll_back(out: Path, journal: Mapping[str, Any]) -> None:
    """Restore the instruments files, drop new files and cut appended tails back to the calendar."""
    instruments, backup = out / "instruments", out / STATE_DIR / "backup"
    for path in sorted(instruments.glob("*.txt")) if instruments.is_dir() else []:
        if path.name not in journal["universes_before"]:
            path.unlink()
        elif (backup / path.name).is_file():
            os.replace(backup / path.name, path)
    for symbol in journal["rewritten"]:
        for path in (out / "features" / symbol.lower()).glob(f"*{NEW_SUFFIX}"):
            path.unlink()
    for symbol in journal["listed"]:
        shutil.rmtree(out / "features" / symbol.lower(), ignore_errors=True)
    calendar_path = out / "calendars" / f"{FREQ}.txt"
    days = len(calendar_path.read_text().split()) if calendar_path.is_file() else 0
    for symbol in journal["appended"]:
        truncate_tails(out / "features" / symbol.lower(), days)
    os.sync()
    shutil.rmtree(backup, ignore_errors=True)
    (out / STATE_DIR / "journal.json").unlink(missing_ok=True)


def truncate_tails(directory: Path, calendar_length: int) -> None:
    """Cut every feature file in ``directory`` to the values the calendar covers."""
    for path in directory.glob(f"*.{FREQ}.bin"):
        with path.open("r+b") as handle:
            header = np.frombuffer(handle.read(4), dtype=_BIN)
            if not len(header):
                continue
            allowed = 4 * (1 + calendar_length - int(header[0]))
            if path.stat().st_size > allowed:
                handle.truncate(max(allowed, 4))


def _backup_universes(out: Path, names: list[str]) -> None:
    backup = out / STATE_DIR / "backup"
    shutil.rmtree(backup, ignore_errors=True)
    backup.mkdir(parents=True)
    for name in names:
        shutil.copyfile(out / "instruments" / name, backup / name)


def _write_journal(out: Path, journal: Mapping[str, Any]) -> None:
    replace_file(out / STATE_DIR / "journal.json", json.dumps(journal))


def _read_journal(out: Path) -> dict[str, Any] | None:
    path = out / STATE_DIR / "journal.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _universe_text(members: Mapping[str, Span]) -> str:
    return "".join(f"{sym.upper()}\t{span.start:%Y-%m-%d}\t{span.end:%Y-%m-%d}\n" for sym, span in sorted(members.items()))


def _day(calendar: pd.DatetimeIndex) -> str | None:
    return f"{calendar[-1]:%Y-%m-%d}" if len(calendar) else None
