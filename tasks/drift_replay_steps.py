"""Prefect task of the drift-triggered replay; its body is one call into ``tasks.core.replay.drift_result``.

The drift replay is sequential (each window is placed on the day the rule fires on the one before), so it
runs as one task in the flow's process.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.core.replay.drift_plan import DriftReplaySpec
from tasks.core.replay.drift_result import DriftReplayRecord, drift_replay
from tasks.core.replay.plan import ReplayPlan


# No retry: its failures (a window that does not fit the calendar) repeat; a re-run reloads the registered windows.
@task(name="replay the drift policy", cache_policy=NO_CACHE)
def replay_drift_policy(plan: ReplayPlan, spec: DriftReplaySpec, fixed_replay_id: str) -> DriftReplayRecord:
    """Train the first window, score it day by day, retrain when the drift rule fires; evaluate and record."""
    return drift_replay(plan, spec, fixed_replay_id, get_run_logger())
