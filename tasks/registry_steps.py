"""Prefect tasks over the registry: each body is one call into `tasks.core.operations` or `registry`."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.events import emit_event
from prefect.runtime import flow_run

from registry import ModelInfo, ModelMetadata
from registry.policy import Decision, PromotionPolicy, decide_promotion
from tasks.core import operations as registration
from tasks.core.rolling import ResolvedRun, previous_on_same_data


def current_flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def _emit(event: str, info: ModelInfo, **payload: Any) -> None:
    emit_event(
        event=f"qmp.model.{event}",
        resource={"prefect.resource.id": f"qmp.model.{info.model_id}", "qmp.model-name": info.model_name},
        payload={"model_id": info.model_id, "model_name": info.model_name, "version": info.version, **payload},
    )


# Idempotent: the registry returns this flow run's earlier registration instead of a second one.
@task(name="register model", retries=2, retry_delay_seconds=2)
def register_model(model: Any, metadata: ModelMetadata) -> ModelInfo:
    info = registration.register_trained(model, metadata, flow_run_id=current_flow_run_id())
    _emit("registered", info, status=info.status.value, metrics=info.performance_metrics)
    return info


@task(name="read production model", retries=2, retry_delay_seconds=2)
def read_production(model_name: str) -> ModelInfo | None:
    return registration.open_registry().get_production_model(model_name)


@task(name="decide promotion")
def decide(candidate: ModelInfo, production: ModelInfo | None, policy: PromotionPolicy) -> Decision:
    return decide_promotion(
        candidate.performance_metrics, production.performance_metrics if production else None, policy
    )


# Promotion is idempotent (promoting the production model again is a no-op), so it may retry.
@task(name="promote model", retries=2, retry_delay_seconds=2)
def promote_model(model_id: str, actor: str, reason: str) -> ModelInfo:
    new, old = registration.promote(model_id, actor=actor, reason=reason, flow_run_id=current_flow_run_id())
    _emit("promoted", new, previous=old.model_id if old else None, actor=actor, reason=reason)
    return new


@task(name="roll back production", retries=1, retry_delay_seconds=2)
def rollback_production(model_name: str, actor: str, reason: str) -> ModelInfo:
    new, old = registration.rollback(model_name, actor=actor, reason=reason, flow_run_id=current_flow_run_id())
    _emit("rolled_back", new, previous=old.model_id if old else None, actor=actor, reason=reason)
    return new


@task(name="record decision", retries=2, retry_delay_seconds=2)
def record_decision(model_id: str, event: str, actor: str, reason: str, awaiting_approval: bool | None = None) -> None:
    registration.open_registry().record_event(
        model_id, event, actor=actor, reason=reason, flow_run_id=current_flow_run_id(),
        awaiting_approval=awaiting_approval,
    )


@task(name="find a version trained on the same data", retries=2, retry_delay_seconds=2)
def find_same_data(model_name: str, run: ResolvedRun) -> ModelInfo | None:
    """The newest version from the same configuration when it saw the same data version (the gate)."""
    return previous_on_same_data(registration.open_registry(), model_name, run)


def emit_stale_data(model_name: str, provider_uri: str, calendar_end: str, reason: str) -> None:
    """The ``qmp.data.stale`` event a Prefect automation can alert on."""
    emit_event(
        event="qmp.data.stale",
        resource={"prefect.resource.id": f"qmp.data.{provider_uri}", "qmp.model-name": model_name},
        payload={"model_name": model_name, "provider_uri": provider_uri, "calendar_end": calendar_end, "reason": reason},
    )
