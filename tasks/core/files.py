"""Files replaced whole: written under a temporary sibling name, then renamed over the final one, so that a
reader (or a process killed halfway) sees the old file or the new one, never part of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object], *, durable: bool = False) -> None:
    """Call ``write`` on a temporary file next to ``path`` (one per process), then rename it over ``path``.

    ``durable`` also flushes the file and the directory entry to disk first, for files a crash must not lose
    once the call returned (the ingest journal, the calendar); a failed ``write`` leaves no temporary file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        if durable:
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (a rename into it) to disk."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
