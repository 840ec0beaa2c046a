"""Qlib data directories that gain trading days or have a past value rewritten, for the feature-cache tests.

A directory "before the append" is a prefix of a complete synthetic directory: the calendar cut short, every
feature file cut to the same day (Qlib's bins are a start index then one float32 per day, so the cut file is
a byte prefix of the full one), membership spans clipped to the new last day. Appending copies the full
directory's files over it, exactly as a daily data update that appends leaves the files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from tasks.core.data.qlib_binary import read_calendar, write_calendar


def write_prefix(full: Path, out: Path, drop_days: int) -> str:
    """Write ``full`` without its last ``drop_days`` trading days to ``out``; return the new last day."""
    calendar = read_calendar(full)
    kept = calendar[:-drop_days]
    last = f"{kept[-1]:%Y-%m-%d}"
    if out.exists():
        shutil.rmtree(out)
    write_calendar(out, kept)
    (out / "instruments").mkdir(parents=True)
    for universe in (full / "instruments").glob("*.txt"):
        lines = []
        for line in universe.read_text().splitlines():
            symbol, start, end = line.split("\t")
            if start <= last:
                lines.append(f"{symbol}\t{start}\t{min(end, last)}\n")
        (out / "instruments" / universe.name).write_text("".join(lines))
    for directory in (full / "features").iterdir():
        target = out / "features" / directory.name
        target.mkdir(parents=True)
        for path in directory.iterdir():
            values = np.fromfile(path, dtype="<f4")
            first = int(values[0])
            keep = max(0, len(kept) - first)
            values[: 1 + keep].astype("<f4").tofile(target / path.name)
    return last


def append_days(full: Path, out: Path) -> None:
    """Bring ``out`` (a prefix of ``full``) up to ``full``: the new days appended, nothing else changed."""
    shutil.copyfile(full / "calendars" / "day.txt", out / "calendars" / "day.txt")
    for universe in (full / "instruments").glob("*.txt"):
        shutil.copyfile(universe, out / "instruments" / universe.name)
    for directory in (full / "features").iterdir():
        (out / "features" / directory.name).mkdir(exist_ok=True)
        for path in directory.iterdir():
            shutil.copyfile(path, out / "features" / directory.name / path.name)


def rewrite_value(data: Path, symbol: str, field: str, day_index: int, factor: float) -> None:
    """Multiply one past value (calendar position ``day_index``) of ``symbol``'s ``field`` in place."""
    path = data / "features" / symbol.lower() / f"{field}.day.bin"
    values = np.fromfile(path, dtype="<f4")
    position = 1 + day_index - int(values[0])
    values[position] = values[position] * factor
    stat = path.stat()
    values.tofile(path)
    # Same size: make sure the modification time moves even on a coarse-grained file system.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
