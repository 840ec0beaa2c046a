"""Running a blocking flow in a thread from a test (a paused retrain, a run waiting for approval), and finding
that run once it pauses."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import FlowRun, StateType


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


def paused_run(parameters: dict[str, Any], box: dict[str, Any], timeout: float, what: str = "run") -> FlowRun:
    """The paused flow run whose parameters include ``parameters``, waited for up to ``timeout`` seconds.

    Asks the server for paused runs only: an unfiltered page of runs is sorted by random UUID, so after
    50 runs in the session the one a test waits for could fall outside it. Fails as soon as the thread
    that runs the flow (``box``, from :func:`in_thread`) has ended without pausing.
    """
    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if "error" in box or "result" in box:
                raise AssertionError(f"the {what} ended without pausing: {box}")
            for run in client.read_flow_runs(flow_run_filter=paused):
                if all(run.parameters.get(key) == value for key, value in parameters.items()):
                    return run
            time.sleep(0.5)
    raise AssertionError(f"no paused {what} with {parameters} within {timeout} s")
