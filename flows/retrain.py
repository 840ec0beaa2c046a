"""The retrain flow: prepare dataset -> train -> evaluate -> register -> decide -> promote | ask | keep."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field, model_validator

from flows.approval import ApprovalSettings, request_approval, resumed_request
from flows.concurrency import one_at_a_time
from flows.reporting import comparison_markdown, publish_decision
from registry import ModelInfo
from registry.comparison import PromotionComparison, compare_for_promotion
from registry.models import NAME_PATTERN
from registry.policy import Action, PromotionPolicy
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
        return load_workflow_config(source, provider_uri=self.provider_uri).require_data_dir()


class RetrainResult(BaseModel):
    model_id: str
    version: str
    status: str
    metrics: dict[str, float]
    decision: Action
    reasons: list[str]
    production_model_id: str | None
    message: str
    comparison: PromotionComparison


def _run_name() -> str:
    name = flow_run.parameters.get("model_name", "model")
    return f"retrain-{name}-{datetime.now(UTC):%Y-%m-%d}"


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
    # A suspended run resumes from the top: if this run already asked for approval, go back to the question.
    resumed = resumed_request(model_name)
    if resumed is not None:
        info, production, decision = resumed
        comparison = compare_for_promotion(info, production, policy, decision)
    else:
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
        info = reg.mark_candidate(info, decision)
        comparison = compare_for_promotion(info, production, policy, decision)
        publish_decision(model_name, comparison)
        for reason in decision.reasons:
            logger.info("decision %s: %s", decision.action.value, reason)

    new_production: ModelInfo | None = None
    if decision.action == Action.PROMOTE:
        with one_at_a_time("promote", model_name):
            new_production = reg.promote_model(info.model_id, "retrain-flow", "; ".join(decision.reasons))
        message = f"{info.model_id} promoted to production"
    elif decision.action == Action.NEEDS_APPROVAL:
        new_production, message = request_approval(info, production, decision, policy, approval,
                                                   comparison_markdown(comparison, key_only=True))
    else:
        message = f"{info.model_id} kept as {info.status.value}: " + "; ".join(decision.reasons)
    logger.info(message)
    final = new_production or open_registry().get_model_info(info.model_id)
    current = new_production or production
    return RetrainResult(
        model_id=info.model_id, version=info.version, status=final.status.value, metrics=info.performance_metrics,
        decision=decision.action, reasons=decision.reasons,
        production_model_id=current.model_id if current else None, message=message, comparison=comparison,
    )
