"""Running a blocking flow in a thread from a test (a paused retrain, a run waiting for approval)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``work`` in a daemon thread that sees this thread's Prefect settings (they live in context
    variables); returns the thread and a box that gets ``result`` or the ``error`` it raised."""
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box["result"] = context.run(work)
        except BaseException as exc:  # reported by the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box
