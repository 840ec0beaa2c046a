"""The retrain flow: resume | gate -> train and evaluate (register) -> re-score the champion -> decide -> act
(promote | ask for approval | keep)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment
from pydantic import BaseModel, Field

from flows.approval import request_approval, resumed_request
from flows.concurrency import one_at_a_time
from flows.options import ApprovalSettings, DataFreshness, EvaluationSegment, WorkflowSource
from flows.reporting import comparison_markdown, history_summary, publish_decision, scoring_note
from flows.run_names import stamped_run_name
from registry import ModelInfo
from registry.approvals import EvaluatedOn
from registry.models import NAME_PATTERN
from registry.policy import Action, Decision, PromotionPolicy
from registry.settings import load_settings
from registry.statuses import EventKind
from registry.views.promotion import PromotionComparison, compare_for_promotion
from tasks import registry_steps as reg
from tasks.core.approvals.champion import ChampionScore
from tasks.core.data.ingest.calendar import declared_calendar
from tasks.core.lifecycle import metadata_for, open_registry
from tasks.core.windows.schedule import (
    ResolvedRun,
    StaleDataError,
    declares_synthetic_calendar,
    stale_data_reason,
)
from tasks.core.windows.settings import WindowSettings
from tasks.events import emit_stale_data
from tasks.qlib_steps import evaluate_model, prepare_dataset, rescore_production, resolve_windows, train_model

ModelName = Annotated[
    str, Field(title="Model name", description="Registry name of the model, e.g. lgbm_alpha158.",
               pattern=NAME_PATTERN.pattern, max_length=100),
]


__all__ = ["ApprovalSettings", "RetrainResult", "WorkflowSource", "retrain"]


class CandidateOutcome(StrEnum):
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
    outcome: CandidateOutcome = CandidateOutcome.KEPT
    decided_by: str | None = Field(None, description="Who promoted or rejected the candidate.")


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
    """Deployment runs on a market's data only: fail on a calendar that ends too long ago, with a
    ``qmp.data.stale`` event."""
    if deployment.id is None or freshness.max_data_age_days is None or declares_synthetic_calendar(run.cfg.provider_uri):
        return
    zone = freshness.timezone or _deployment_timezone()
    calendar = declared_calendar(Path(run.cfg.provider_uri).expanduser()) or "cn"
    reason = stale_data_reason(run.data_version, freshness.max_data_age_days, zone, calendar=calendar)
    if reason is not None:
        emit_stale_data(model_name, run.cfg.provider_uri, run.data_version.calendar_end.isoformat(), reason)
        raise StaleDataError(reason)


def evaluated_on(run: ResolvedRun, segment: str) -> EvaluatedOn:
    """Where the candidate was evaluated, recorded with an approval request for the stale-approval check."""
    return EvaluatedOn(segment=segment, provider_uri=str(Path(run.cfg.provider_uri).expanduser().resolve()))


@dataclass
class Challenger:
    """The model this run trained, registered, with the dataset it was evaluated on."""

    info: ModelInfo
    dataset: Any


@dataclass
class Candidate:
    """What the policy decided about a registered model (``run`` and ``champion`` are None on a resumed run)."""

    info: ModelInfo
    production: ModelInfo | None
    decision: Decision
    comparison: PromotionComparison
    run: ResolvedRun | None = None
    champion: ChampionScore | None = None


@dataclass
class Ending:
    """What became of the candidate: the new production model (if any), the outcome, who decided, the message."""

    new_production: ModelInfo | None
    outcome: CandidateOutcome
    decided_by: str | None
    message: str


@flow(name="retrain", flow_run_name=stamped_run_name("retrain", "model"), log_prints=True)
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
    candidate = resume(model_name, policy)
    if candidate is None:
        run = resolve_windows(workflow.load(), windows)
        check_data_freshness(model_name, run, freshness)
        with one_at_a_time("retrain", model_name):
            skipped = no_new_data(model_name, run, force)
            if skipped is not None:
                return skipped
            challenger = train_and_evaluate(model_name, run, evaluation_segment)
        production = reg.read_production(model_name)
        champion = rescore_champion(production, run, challenger, evaluation_segment)
        candidate = decide(model_name, challenger, production, champion, policy, run)
    return result_of(candidate, act(candidate, policy, approval, evaluation_segment))


def resume(model_name: str, policy: PromotionPolicy) -> Candidate | None:
    """This run's own pending question, when it already asked for approval and was resumed (or retried).

    A suspended run resumes from the top, so this comes before the no-new-data gate, which would otherwise end
    it (its own model has this data version).
    """
    resumed = resumed_request(model_name)
    if resumed is None:
        return None
    info, production, decision = resumed
    return Candidate(info, production, decision, compare_for_promotion(info, production, policy, decision))


def no_new_data(model_name: str, run: ResolvedRun, force: bool) -> RetrainResult | None:
    """The gate: the skipped run's result when a version was already trained on this data version."""
    previous = None if force else reg.find_same_data(model_name, run)
    if previous is None:
        return None
    message = (
        f"no new data since {run.data_version.calendar_end.isoformat()}: nothing to train "
        f"({previous.model_id} was trained on data version {run.data_version})"
    )
    get_run_logger().info(message)
    return RetrainResult(
        model_id=None, version=None, status=None, metrics={}, decision=None, reasons=[],
        production_model_id=None, message=message, skipped=True, segments=run.segments,
        outcome=CandidateOutcome.SKIPPED, data_version=str(run.data_version),
    )


def train_and_evaluate(model_name: str, run: ResolvedRun, segment: str) -> Challenger:
    """Prepare the dataset, train, evaluate on ``segment`` and register the model as `registered`."""
    cfg = run.cfg
    dataset = prepare_dataset(cfg)
    trained = train_model(cfg, dataset, experiment_name=model_name)
    evaluation = evaluate_model(trained.model, dataset, cfg, recorder_id=trained.recorder_id, segment=segment)
    metadata = metadata_for(model_name, cfg, evaluation.metrics, experiment_name=trained.experiment_name,
                            recorder_id=trained.recorder_id, tags=run.tags(), dataset_extras=run.dataset_extras())
    return Challenger(reg.register_model(trained.model, metadata, evaluation.series), dataset)


def rescore_champion(
    production: ModelInfo | None, run: ResolvedRun, challenger: Challenger, segment: str
) -> ChampionScore | None:
    """The fair comparison: production scored on the candidate's evaluation days with the same metric code."""
    return rescore_production(production, run.cfg, challenger.dataset, segment, challenger.info) if production else None


def decide(
    model_name: str, challenger: Challenger, production: ModelInfo | None, champion: ChampionScore | None,
    policy: PromotionPolicy, run: ResolvedRun,
) -> Candidate:
    """Apply the policy, mark a winner `candidate`, and publish and record the comparison."""
    decision = reg.decide(challenger.info, production, policy, champion)
    info = reg.mark_candidate(challenger.info, decision)
    comparison = compare_for_promotion(
        info, production, policy, decision, production_on_window=champion.metrics if champion else None,
        data_version=str(run.data_version),
    )
    publish_decision(model_name, comparison)
    reg.record_decision(info.model_id, EventKind.COMPARED, "retrain-flow",
                        history_summary(comparison, scoring_note(champion)))
    for reason in decision.reasons:
        get_run_logger().info("decision %s: %s", decision.action.value, reason)
    return Candidate(info, production, decision, comparison, run, champion)


def act(candidate: Candidate, policy: PromotionPolicy, approval: ApprovalSettings, segment: str) -> Ending:
    """Promote, ask for approval and apply the answer, or keep the model as it is, as the decision says."""
    info, decision, champion = candidate.info, candidate.decision, candidate.champion
    if decision.action == Action.PROMOTE:
        with one_at_a_time("promote", info.model_name):
            new_production = reg.promote_model(info.model_id, "retrain-flow", "; ".join(decision.reasons))
        ending = Ending(new_production, CandidateOutcome.PROMOTED, "retrain-flow",
                        f"{info.model_id} promoted to production")
    elif decision.action == Action.NEEDS_APPROVAL:
        new_production, ended, decided_by, message = request_approval(
            info, candidate.production, decision, policy, approval,
            comparison_markdown(candidate.comparison, key_only=True),
            evaluated_on=evaluated_on(candidate.run, segment) if candidate.run else None,
            production_on_window=champion.metrics if champion and champion.scored else None)
        ending = Ending(new_production, CandidateOutcome(ended), decided_by, message)
    else:
        ending = Ending(None, CandidateOutcome.KEPT, None,
                        f"{info.model_id} kept as {info.status.value}: " + "; ".join(decision.reasons))
    get_run_logger().info(ending.message)
    return ending


def result_of(candidate: Candidate, ending: Ending) -> RetrainResult:
    """The flow's result: the candidate as it now stands, the decision and what became of it."""
    info, run, champion = candidate.info, candidate.run, candidate.champion
    final = ending.new_production or open_registry(load_settings()).get_model_info(info.model_id)
    current = ending.new_production or candidate.production
    return RetrainResult(
        model_id=info.model_id, version=info.version, status=final.status.value, metrics=info.performance_metrics,
        decision=candidate.decision.action, reasons=candidate.decision.reasons,
        production_model_id=current.model_id if current else None, message=ending.message,
        comparison=candidate.comparison, segments=run.segments if run else {},
        data_version=str(run.data_version) if run else None,
        production_unscored=champion.error if champion else None,
        production_rescoring_seconds=champion.seconds if champion else None,
        outcome=ending.outcome, decided_by=ending.decided_by,
    )
