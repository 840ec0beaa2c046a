"""The drift check of a name's production model, run after its live metrics: the verdict of the registry's
drift rule on the model's own live days, and a ``drift_detected`` history event on the first drifted verdict
of an episode (an episode ends with the name's next promotion or rollback).
"""

from __future__ import annotations

from dataclasses import dataclass

from registry import ModelRegistry
from registry.drift import DriftResult, expectation_of, judge_drift
from registry.statuses import EventKind

EPISODE_ENDS = frozenset({EventKind.PROMOTED, EventKind.ROLLED_BACK})


@dataclass
class DriftCheck:
    """A name's drift verdict and whether this check opened a new drift episode."""

    result: DriftResult
    new_episode: bool = False


def drift_of(registry: ModelRegistry, model_name: str) -> DriftResult | None:
    """The drift verdict of the name's production model on its own live days (None without production)."""
    production = registry.get_production_model(model_name)
    if production is None:
        return None
    live = [day.ic for day in registry.live_metrics(model_name) if day.model_id == production.model_id]
    expectation = expectation_of(registry.get_evaluation_series(production.model_id), production.performance_metrics)
    return judge_drift(model_name, production.model_id, live, expectation, registry.drift_rule(model_name))


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
