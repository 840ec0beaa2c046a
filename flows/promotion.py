"""Flows a person triggers from the Prefect UI: promote a given model, roll back a name's production."""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import Field

from flows.concurrency import one_at_a_time
from flows.retrain import ModelName
from registry import ModelInfo
from registry.settings import load_settings
from tasks import registry_steps as reg
from tasks.core.lifecycle import open_registry

Approver = Annotated[str, Field(title="Approver", min_length=1, max_length=256, description="Recorded in the history.")]
Reason = Annotated[str, Field(title="Reason", min_length=1, max_length=2000, description="Recorded in the history.")]


@flow(name="promote", flow_run_name="promote-{model_id}")
def promote(
    model_id: Annotated[str, Field(title="Model id", description="e.g. lgbm_alpha158_v1.4.0", max_length=200)],
    approver: Approver,
    reason: Reason,
) -> ModelInfo:
    """Make a registered or candidate model production (its artifact checksum is verified first)."""
    name = open_registry(load_settings()).get_model_info(model_id).model_name
    with one_at_a_time("promote", name):
        info = reg.promote_model(model_id, approver, reason)
    get_run_logger().info("%s is now the production model of %s (by %s: %s)", info.model_id, name, approver, reason)
    return info


@flow(name="rollback", flow_run_name="rollback-{model_name}")
def rollback(model_name: ModelName, approver: Approver, reason: Reason) -> ModelInfo:
    """Restore the previous production model of a name, after verifying its artifact checksum."""
    with one_at_a_time("promote", model_name):
        info = reg.rollback_production(model_name, approver, reason)
    get_run_logger().info("rolled back %s to %s (by %s: %s)", model_name, info.model_id, approver, reason)
    return info
