"""The retrain flow: prepare dataset -> train -> evaluate -> register -> decide -> promote | ask | keep."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from prefect import flow, get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from pydantic import BaseModel, Field

from flows.concurrency import one_at_a_time
from flows.options import ApprovalSettings, DataFreshness, EvaluationSegment, WorkflowSource
from flows.reporting import artifact_key, comparison_markdown, history_summary, publish_decision, scoring_note
from registry import ModelInfo
from registry.comparison import PromotionComparison, compare_for_promotion
from registry.models import NAME_PATTERN
from registry.policy import Action, Decision, PromotionPolicy
from registry.statuses import EventKind
from tasks import registry_steps as reg
from tasks.core.events import emit_stale_data
from tasks.core.operations import metadata_for, open_registry
from tasks.core.rolling import ResolvedRun, StaleDataError, stale_data_reason
from tasks.core.window_settings import WindowSettings
from tasks.qlib_steps import evaluate_model, prepare_dataset, rescore_production, resolve_windows, train_model

ModelName = Annotated[
    str, Field(title="Model name", description="Registry name of the model, e.g. lgbm_alpha158.",
               pattern=NAME_PATTERN.pattern, max_length=100),
]


class ApprovalInput(RunInput):
    """The form the Prefect UI shows on Resume."""

    approve: bool = Field(description="Promote this candidate to production?")
    approver: str = Field(min_length=1, max_length=256, description="Your name; recorded in the registry history.")
    comment: str = Field("", max_length=2000, description="Why; recorded in the registry history.")


__all__ = ["ApprovalSettings", "RetrainResult", "WorkflowSource", "retrain"]


class Outcome(StrEnum):
    """What happened to the candidate in the end (the decision is what the policy asked for)."""

    PROMOTED = "promoted"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    KEPT = "kept"
    SKIPPED = "skipped"


class RetrainResult(BaseModel):
    model_id: str | None
    version: str | None
    status: str | None
    metrics: dict[str, float]
    decision: Action | None
    reasons: list[str]
    production_model_id: str | None
    message: str
    skipped: bool = False
    segments: dict[str, list[str]] = {}
    data_version: str | None = None
    comparison: PromotionComparison | None = None  # None when the gate skipped the run
    production_unscored: str | None = None
    production_rescoring_seconds: float | None = None
    outcome: Outcome = Outcome.KEPT
    decided_by: str | None = Field(None, description="Who promoted or rejected the candidate.")


def _run_name() -> str:
    """Unique per run and still readable in the runs list: name, UTC date and time to the second."""
    name = flow_run.parameters.get("model_name", "model")
    return f"retrain-{name}-{datetime.now(UTC):%Y-%m-%d-%H%M%S}"


def request_approval(info: ModelInfo, comparison: PromotionComparison, decision: Decision,
                     approval: ApprovalSettings) -> tuple[ModelInfo | None, Outcome, str | None, str]:
    """Pause for a person's answer; returns (new production or None, outcome, who decided, what happened)."""
    logger = get_run_logger()
    reg.record_decision(info.model_id, EventKind.APPROVAL_REQUESTED, "retrain-flow",
                        "; ".join(decision.reasons), awaiting_approval=True)
    form = ApprovalInput.with_initial_data(description=comparison_markdown(comparison), approve=True)
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=approval.timeout_seconds,
                                poll_interval=approval.poll_interval_seconds, key=artifact_key("approve", info.model_id))
    except FlowPauseTimeout:
        # The flow run may no longer be allowed to start tasks; write to the registry directly.
        open_registry().record_event(
            info.model_id, EventKind.APPROVAL_TIMED_OUT, actor="retrain-flow", awaiting_approval=False,
            reason=f"no answer within {approval.timeout_seconds} s; the model stays {info.status.value}",
            flow_run_id=reg.current_flow_run_id(),
        )
        message = f"no approval within {approval.timeout_seconds} s: {info.model_id} stays {info.status.value}"
        logger.warning(message)
        return None, Outcome.TIMED_OUT, None, message
    if not answer.approve:
        reg.record_decision(info.model_id, EventKind.APPROVAL_REJECTED, answer.approver, answer.comment or "rejected",
                            awaiting_approval=False)
        return None, Outcome.REJECTED, answer.approver, f"{answer.approver} rejected {info.model_id}: it stays {info.status.value}"
    with one_at_a_time("promote", info.model_name):
        new = reg.promote_model(info.model_id, answer.approver, answer.comment or "approved in the Prefect UI")
    return new, Outcome.APPROVED, answer.approver, f"{answer.approver} approved: {new.model_id} is production"


def _deployment_timezone() -> str:
    """The time zone of the running deployment's first schedule (UTC when it has none)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_deployment(deployment.id)
    for schedule in found.schedules:
        zone = getattr(schedule.schedule, "timezone", None)
        if zone:
            return str(zone)
    return "UTC"


def check_data_freshness(model_name: str, run: ResolvedRun, freshness: DataFreshness) -> None:
    """Deployment runs only: fail on a calendar that ends too long ago, with a ``qmp.data.stale`` event."""
    if deployment.id is None or freshness.max_data_age_days is None:
        return
    zone = freshness.timezone or _deployment_timezone()
    reason = stale_data_reason(run.data_version, freshness.max_data_age_days, zone)
    if reason is not None:
        emit_stale_data(model_name, run.cfg.provider_uri, run.data_version.calendar_end.isoformat(), reason)
        raise StaleDataError(reason)


@flow(name="retrain", flow_run_name=_run_name, log_prints=True)
def retrain(
    model_name: ModelName,
    workflow: WorkflowSource,
    policy: PromotionPolicy = PromotionPolicy(),
    approval: ApprovalSettings = ApprovalSettings(),
    evaluation_segment: EvaluationSegment = "test",
    windows: WindowSettings = WindowSettings(),
    force: Annotated[
        bool, Field(title="Force", description="Train even when the data has not changed since the last version.")
    ] = False,
    freshness: DataFreshness = DataFreshness(),
) -> RetrainResult:
    """Train a Qlib model, evaluate it, register it and promote it when it beats production."""
    logger = get_run_logger()
    run = resolve_windows(workflow.load(), windows)
    check_data_freshness(model_name, run, freshness)
    cfg = run.cfg
    with one_at_a_time("retrain", model_name):
        previous = None if force else reg.find_same_data(model_name, run)
        if previous is not None:
            message = (
                f"no new data since {run.data_version.calendar_end.isoformat()}: nothing to train "
                f"({previous.model_id} was trained on data version {run.data_version})"
            )
            logger.info(message)
            return RetrainResult(
                model_id=None, version=None, status=None, metrics={}, decision=None, reasons=[],
                production_model_id=None, message=message, skipped=True, segments=run.segments, outcome=Outcome.SKIPPED,
                data_version=str(run.data_version),
            )
        dataset = prepare_dataset(cfg)
        trained = train_model(cfg, dataset, experiment_name=model_name)
        evaluation = evaluate_model(trained.model, dataset, cfg, recorder_id=trained.recorder_id, segment=evaluation_segment)
        metadata = metadata_for(model_name, cfg, evaluation.metrics, experiment_name=trained.experiment_name,
                                recorder_id=trained.recorder_id, tags=run.tags(), dataset_extras=run.dataset_extras())
        info = reg.register_model(trained.model, metadata, evaluation.series)
    production = reg.read_production(model_name)
    # The fair comparison: production scored on the candidate's evaluation days with the same metric code.
    champion = rescore_production(production, cfg, dataset, evaluation_segment) if production else None
    decision = reg.decide(info, production, policy, champion)
    info = reg.mark_candidate(info, decision)
    comparison = compare_for_promotion(
        info, production, policy, decision, production_on_window=champion.metrics if champion else None,
        data_version=str(run.data_version),
    )
    publish_decision(model_name, comparison)
    reg.record_decision(info.model_id, EventKind.COMPARED, "retrain-flow",
                        history_summary(comparison, scoring_note(champion)))
    for reason in decision.reasons:
        logger.info("decision %s: %s", decision.action.value, reason)

    new_production: ModelInfo | None = None
    decided_by: str | None = None
    if decision.action == Action.PROMOTE:
        with one_at_a_time("promote", model_name):
            new_production = reg.promote_model(info.model_id, "retrain-flow", "; ".join(decision.reasons))
        outcome, decided_by, message = Outcome.PROMOTED, "retrain-flow", f"{info.model_id} promoted to production"
    elif decision.action == Action.NEEDS_APPROVAL:
        new_production, outcome, decided_by, message = request_approval(info, comparison, decision, approval)
    else:
        outcome, message = Outcome.KEPT, f"{info.model_id} kept as {info.status.value}: " + "; ".join(decision.reasons)
    logger.info(message)
    final = new_production or open_registry().get_model_info(info.model_id)
    current = new_production or production
    return RetrainResult(
        model_id=info.model_id, version=info.version, status=final.status.value, metrics=info.performance_metrics,
        decision=decision.action, reasons=decision.reasons,
        production_model_id=current.model_id if current else None, message=message, comparison=comparison,
        segments=run.segments, data_version=str(run.data_version),
        production_unscored=champion.error if champion else None,
        production_rescoring_seconds=champion.seconds if champion else None,
        outcome=outcome, decided_by=decided_by,
    )
