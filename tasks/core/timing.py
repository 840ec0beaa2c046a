"""`timed()`: the one stopwatch of the pipeline (tasks, flows and the CLI time their steps with it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Seconds since the start: running inside the `with` block, frozen once it ends."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._stopped: float | None = None

    @property
    def seconds(self) -> float:
        return (self._stopped if self._stopped is not None else time.perf_counter()) - self._started

    def stop(self) -> None:
        self._stopped = time.perf_counter()


@contextmanager
def timed() -> Iterator[Stopwatch]:
    """Time the `with` block: `with timed() as clock: ...` then `clock.seconds`."""
    clock = Stopwatch()
    try:
        yield clock
    finally:
        clock.stop()
