"""An ingest that kills itself with SIGKILL just before its K-th file-system step (run by test_crashes.py).

Usage: python -m tests.ingest.crash_child DATA_DIR TABLE_FILE K CORRECTIONS
The steps: every os.replace / os.unlink / os.sync, every corrected file written, every instrument's tail
appended and every new instrument written. Exit code 0 means the ingest finished before step K.
"""

from __future__ import annotations

import os
import signal
import sys
from functools import wraps
from pathlib import Path
from typing import Any

from tasks.core.data.ingest import commit
from tasks.core.data.ingest.operation import IngestOptions, ingest
from tasks.core.data.ingest.sources import Source

STEPS = {"count": 0}


def counted(function: Any, limit: int) -> Any:
    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        STEPS["count"] += 1
        if STEPS["count"] == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return function(*args, **kwargs)

    return wrapper


def main() -> None:
    out, table, limit, corrections = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    for name in ("replace", "unlink", "sync"):
        setattr(os, name, counted(getattr(os, name), limit))
    for name in ("write_new_file", "append_instrument_days", "write_features"):
        setattr(commit, name, counted(getattr(commit, name), limit))
    ingest(Source("table", table), out, IngestOptions(corrections=corrections))


if __name__ == "__main__":
    main()
