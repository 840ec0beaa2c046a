"""Prefect tasks over the registry: each body is one call into `tasks.core.lifecycle` or `registry` with the
settings of the environment, then the registry change's Prefect event (`tasks.events`)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.runtime import flow_run

from registry import EvaluationSeries, ModelInfo, ModelMetadata
from registry.policy import Decision, PromotionPolicy, decide_on_window, decide_promotion
from registry.settings import load_settings
from tasks import events
from tasks.core import lifecycle
from tasks.core.approvals.champion import ChampionScore
from tasks.core.windows.schedule import ResolvedRun, previous_on_same_data


def current_flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


# Idempotent: the registry returns this flow run's earlier registration instead of a second one.
@task(name="register model", retries=2, retry_delay_seconds=2)
def register_model(model: Any, metadata: ModelMetadata, series: dict[str, EvaluationSeries] | None = None) -> ModelInfo:
    info = lifecycle.register_trained(model, metadata, load_settings(), flow_run_id=current_flow_run_id(), series=series)
    events.emit_registered(info)
    return info


@task(name="read production model", retries=2, retry_delay_seconds=2)
def read_production(model_name: str) -> ModelInfo | None:
    return lifecycle.open_registry(load_settings()).get_production_model(model_name)


@task(name="decide promotion")
def decide(
    candidate: ModelInfo, production: ModelInfo | None, policy: PromotionPolicy, champion: ChampionScore | None = None
) -> Decision:
    """With ``champion`` (production re-scored on the candidate's window) the policy compares those numbers,
    not production's registration-time metrics."""
    if production is not None and champion is not None:
        window = f"{champion.window[0]}..{champion.window[1]}"
        return decide_on_window(
            champion.candidate_metrics or candidate.performance_metrics, champion.metrics, policy, window=window,
            production_unscored=champion.error, note=champion.note,
        )
    return decide_promotion(
        candidate.performance_metrics, production.performance_metrics if production else None, policy
    )


# Idempotent: a model already a candidate (or beyond) is left as it is.
@task(name="mark candidate", retries=2, retry_delay_seconds=2)
def mark_candidate(info: ModelInfo, decision: Decision) -> ModelInfo:
    return lifecycle.mark_candidate(info, decision, load_settings(), actor="retrain-flow",
                                    flow_run_id=current_flow_run_id())


# Promotion is idempotent (promoting the production model again is a no-op), so it may retry.
@task(name="promote model", retries=2, retry_delay_seconds=2)
def promote_model(model_id: str, actor: str, reason: str) -> ModelInfo:
    new, previous = lifecycle.promote(model_id, load_settings(), actor=actor, reason=reason,
                                      flow_run_id=current_flow_run_id())
    events.emit_promoted(new, previous, actor=actor, reason=reason)
    return new


@task(name="roll back production", retries=1, retry_delay_seconds=2)
def rollback_production(model_name: str, actor: str, reason: str) -> ModelInfo:
    new, previous = lifecycle.rollback(model_name, load_settings(), actor=actor, reason=reason,
                                       flow_run_id=current_flow_run_id())
    events.emit_rolled_back(new, previous, actor=actor, reason=reason)
    return new


@task(name="record decision", retries=2, retry_delay_seconds=2)
def record_decision(model_id: str, event: str, actor: str, reason: str, awaiting_approval: bool | None = None) -> None:
    lifecycle.open_registry(load_settings()).record_event(
        model_id, event, actor=actor, reason=reason, flow_run_id=current_flow_run_id(),
        awaiting_approval=awaiting_approval,
    )


@task(name="find a version trained on the same data", retries=2, retry_delay_seconds=2)
def find_same_data(model_name: str, run: ResolvedRun) -> ModelInfo | None:
    """The newest version from the same configuration when it saw the same data version (the gate)."""
    return previous_on_same_data(lifecycle.open_registry(load_settings()), model_name, run)

