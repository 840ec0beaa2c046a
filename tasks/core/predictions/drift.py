"""The drift check of a name's production model, run after its live metrics: the verdict of the registry's
drift rule on the model's own live days, and a ``drift_detected`` history event on the first drifted verdict
of an episode (an episode ends with the name's next promotion or rollback).
"""

from __future__ import annotations

from dataclasses import dataclass

from registry import ModelRegistry
from registry.drift import DriftResult
from registry.statuses import EventKind
from registry.views.monitor import drift_of

EPISODE_ENDS = frozenset({EventKind.PROMOTED, EventKind.ROLLED_BACK})


@dataclass
class DriftCheck:
    """A name's drift verdict and whether this check opened a new drift episode."""

    result: DriftResult
    new_episode: bool = False


def in_drift_episode(registry: ModelRegistry, model_name: str) -> bool:
    """Whether a drift was recorded for the name since its last promotion or rollback."""
    for event in reversed(registry.history(model_name)):
        if event.event == EventKind.DRIFT_DETECTED:
            return True
        if event.event in EPISODE_ENDS:
            return False
    return False


def check_drift(
    registry: ModelRegistry, model_name: str, *, actor: str = "predict-flow", flow_run_id: str | None = None
) -> DriftCheck | None:
    """Judge the name's production model; record ``drift_detected`` when a drift episode starts."""
    result = drift_of(registry, model_name)
    if result is None:
        return None
    if not result.drifted or in_drift_episode(registry, model_name):
        return DriftCheck(result)
    registry.record_event(result.model_id, EventKind.DRIFT_DETECTED, actor=actor, flow_run_id=flow_run_id,
                          reason="; ".join(result.reasons))
    return DriftCheck(result, new_episode=True)
