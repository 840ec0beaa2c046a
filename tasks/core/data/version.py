"""The data version of a Qlib data directory: its calendar's last day plus a cheap content fingerprint.

One definition, used by the retrain gate ("no new data"), the feature cache (never stale) and the
predictions store. The fingerprint covers the calendar file's bytes, the instruments files' bytes and
every feature file's name, size and modification time (nanoseconds), so appending days, adding an
instrument or rewriting a past value (a correction, a re-import) all give a new version, while reading
the directory costs one ``stat`` per feature file and no read of the features themselves.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tasks.core.errors import PipelineInputError

CALENDAR = Path("calendars") / "day.txt"


class DataVersionError(PipelineInputError):
    """The directory is not a readable Qlib data directory (the message names what is missing)."""


@dataclass(frozen=True)
class DataVersion:
    """``calendar_end`` is the last trading day; ``fingerprint`` changes with any change of the data."""

    calendar_end: date
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.calendar_end.isoformat()}/{self.fingerprint}"

    @classmethod
    def parse(cls, text: str) -> DataVersion:
        """The inverse of ``str()``: ``YYYY-MM-DD/<fingerprint>``."""
        day, sep, fingerprint = text.partition("/")
        if not sep or not fingerprint:
            raise DataVersionError(f"not a data version: {text!r} (expected YYYY-MM-DD/<fingerprint>)")
        return cls(date.fromisoformat(day), fingerprint)


def _calendar_end(calendar: Path) -> date:
    with calendar.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64))
        tail = handle.read().decode().split()
    if not tail:
        raise DataVersionError(f"{calendar}: the calendar is empty")
    return date.fromisoformat(tail[-1])


def data_version(provider_uri: str | os.PathLike[str]) -> DataVersion:
    """The data version of the Qlib data directory ``provider_uri`` (daily frequency)."""
    root = Path(provider_uri).expanduser()
    calendar = root / CALENDAR
    if not calendar.is_file():
        raise DataVersionError(f"{root}: no {CALENDAR} (not a Qlib data directory)")
    digest = hashlib.blake2b(digest_size=12)
    digest.update(calendar.read_bytes())
    instruments = root / "instruments"
    for path in sorted(instruments.glob("*.txt")) if instruments.is_dir() else ():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    features = root / "features"
    if features.is_dir():
        for entry in sorted(os.scandir(features), key=lambda e: e.name):
            if not entry.is_dir():
                continue
            for item in sorted(os.scandir(entry.path), key=lambda e: e.name):
                stat = item.stat()
                digest.update(f"{entry.name}/{item.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return DataVersion(_calendar_end(calendar), digest.hexdigest())
