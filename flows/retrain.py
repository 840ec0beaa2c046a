"""The retrain flow: prepare dataset -> train -> evaluate -> register -> decide -> promote | ask | keep."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.runtime import flow_run
from pydantic import BaseModel, Field, model_validator

from flows.approval import approval_form
from flows.concurrency import one_at_a_time
from flows.reporting import artifact_key, comparison_markdown, publish_decision
from registry import ModelInfo
from registry.models import NAME_PATTERN
from registry.policy import Action, Decision, PromotionPolicy
from tasks import registry_steps as reg
from tasks.core.operations import metadata_for, open_registry
from tasks.core.workflow_config import WorkflowConfig, load_workflow_config
from tasks.qlib_steps import evaluate_model, prepare_dataset, train_model

ModelName = Annotated[
    str, Field(title="Model name", description="Registry name of the model, e.g. lgbm_alpha158.",
               pattern=NAME_PATTERN.pattern, max_length=100),
]


class WorkflowSource(BaseModel):
    """Which Qlib workflow to train: a qrun-style YAML path or the same configuration inline."""

    config_path: str | None = Field(None, title="Workflow YAML", description="Path to a qrun workflow_config_*.yaml.")
    config: dict[str, Any] | None = Field(None, title="Inline workflow", description="The YAML's content as a mapping.")
    provider_uri: str | None = Field(
        None, title="Qlib data directory", description="Overrides qlib_init.provider_uri (default: QMP_PROVIDER_URI)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowSource:
        if (self.config_path is None) == (self.config is None):
            raise ValueError("give exactly one of config_path or config")
        return self

    def load(self) -> WorkflowConfig:
        source: Any = self.config if self.config is not None else self.config_path
        return load_workflow_config(source, provider_uri=self.provider_uri)


class ApprovalSettings(BaseModel):
    """How long a manual approval may take."""

    timeout_seconds: int = Field(86_400, ge=5, le=7 * 86_400, title="Approval timeout (s)",
                                 description="Without an answer by then the model stays a candidate.")
    poll_interval_seconds: int = Field(10, ge=1, le=600, title="Poll interval (s)")


class RetrainResult(BaseModel):
    model_id: str
    version: str
    status: str
    metrics: dict[str, float]
    decision: Action
    reasons: list[str]
    production_model_id: str | None
    message: str


def _run_name() -> str:
    name = flow_run.parameters.get("model_name", "model")
    return f"retrain-{name}-{datetime.now(UTC):%Y-%m-%d}"


def request_approval(info: ModelInfo, production: ModelInfo | None, decision: Decision,
                     approval: ApprovalSettings) -> tuple[ModelInfo | None, str]:
    """Pause for a person's answer; returns (new production or None, what happened)."""
    logger = get_run_logger()
    reg.record_decision(info.model_id, "approval_requested", "retrain-flow",
                        "; ".join(decision.reasons), awaiting_approval=True)
    form = approval_form(comparison_markdown(info, production, decision))
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=approval.timeout_seconds,
                                poll_interval=approval.poll_interval_seconds, key=artifact_key("approve", info.model_id))
    except FlowPauseTimeout:
        # The flow run may no longer be allowed to start tasks; write to the registry directly.
        open_registry().record_event(
            info.model_id, "approval_timed_out", actor="retrain-flow", awaiting_approval=False,
            reason=f"no answer within {approval.timeout_seconds} s; the model stays {info.status.value}",
            flow_run_id=reg.current_flow_run_id(),
        )
        message = f"no approval within {approval.timeout_seconds} s: {info.model_id} stays {info.status.value}"
        logger.warning(message)
        return None, message
    if answer.decision == "reject":
        reg.record_decision(info.model_id, "approval_rejected", answer.approver, answer.comment or "rejected",
                            awaiting_approval=False)
        return None, f"{answer.approver} rejected {info.model_id}: it stays {info.status.value}"
    with one_at_a_time("promote", info.model_name):
        new = reg.promote_model(info.model_id, answer.approver, answer.comment or "approved in the Prefect UI")
    return new, f"{answer.approver} approved: {new.model_id} is production"


@flow(name="retrain", flow_run_name=_run_name, log_prints=True)
def retrain(
    model_name: ModelName,
    workflow: WorkflowSource,
    policy: PromotionPolicy = PromotionPolicy(),
    approval: ApprovalSettings = ApprovalSettings(),
    evaluation_segment: Annotated[
        str, Field(title="Evaluation segment", description="Dataset segment the metrics are computed on.")
    ] = "test",
) -> RetrainResult:
    """Train a Qlib model, evaluate it, register it and promote it when it beats production."""
    logger = get_run_logger()
    cfg = workflow.load()
    with one_at_a_time("retrain", model_name):
        dataset = prepare_dataset(cfg)
        trained = train_model(cfg, dataset, experiment_name=model_name)
        metrics = evaluate_model(trained.model, dataset, cfg, recorder_id=trained.recorder_id, segment=evaluation_segment)
        metadata = metadata_for(model_name, cfg, metrics, experiment_name=trained.experiment_name,
                                recorder_id=trained.recorder_id)
        info = reg.register_model(trained.model, metadata)
    production = reg.read_production(model_name)
    decision = reg.decide(info, production, policy)
    publish_decision(info, production, decision)
    for reason in decision.reasons:
        logger.info("decision %s: %s", decision.action.value, reason)

    new_production: ModelInfo | None = None
    if decision.action == Action.PROMOTE:
        with one_at_a_time("promote", model_name):
            new_production = reg.promote_model(info.model_id, "retrain-flow", "; ".join(decision.reasons))
        message = f"{info.model_id} promoted to production"
    elif decision.action == Action.NEEDS_APPROVAL:
        new_production, message = request_approval(info, production, decision, approval)
    else:
        message = f"{info.model_id} kept as {info.status.value}: " + "; ".join(decision.reasons)
    logger.info(message)
    final = new_production or open_registry().get_model_info(info.model_id)
    current = new_production or production
    return RetrainResult(
        model_id=info.model_id, version=info.version, status=final.status.value, metrics=info.performance_metrics,
        decision=decision.action, reasons=decision.reasons,
        production_model_id=current.model_id if current else None, message=message,
    )
