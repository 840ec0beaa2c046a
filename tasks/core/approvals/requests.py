"""Approvals as plain functions (no Prefect import; Qlib only inside the stale check's re-scoring).

`pending_approvals` is the one query every front end uses (`qmp approvals list`, the web page); it returns
plain Pydantic models. `check_still_better` is the stale-approval check: the run that promotes and
`qmp approve` both call it before a decision is taken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from registry import Approval, Approvals, ModelInfo, ModelRegistry
from registry.approvals import Answer
from registry.policy import Decision, PromotionPolicy, decide_on_window, decide_promotion, metric_difference
from registry.settings import Settings

if TYPE_CHECKING:
    from tasks.core.approvals.champion import ChampionScore


class MetricRow(BaseModel):
    """One metric of a candidate-vs-production comparison."""

    metric: str
    candidate: float | None
    production: float | None

    @property
    def difference(self) -> float | None:
        if self.candidate is None or self.production is None:
            return None
        return metric_difference(self.candidate, self.production)  # 0.0 for a tie within numerical noise


class PendingApproval(BaseModel):
    """A candidate awaiting a person's decision, with what the person is asked to judge."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str
    model_name: str
    flow_run_id: str | None
    requested_at: datetime
    expires_at: datetime
    age_seconds: float
    production_model_id: str | None
    comparison: list[MetricRow]
    reasons: list[str]


def comparison_rows(approval: Approval) -> list[MetricRow]:
    production = approval.production_metrics or {}
    names = sorted(set(approval.candidate_metrics) | set(production))
    return [MetricRow(metric=n, candidate=approval.candidate_metrics.get(n), production=production.get(n)) for n in names]


def pending_approvals(
    registry: ModelRegistry, *, model_name: str | None = None, now: datetime | None = None
) -> list[PendingApproval]:
    """Candidates awaiting approval (oldest first), with their comparison and age."""
    at = now or datetime.now(UTC)
    approvals = Approvals(registry).pending(model_name, now=at)
    return [
        PendingApproval(
            model_id=a.model_id, model_name=a.model_name, flow_run_id=a.flow_run_id, requested_at=a.requested_at,
            expires_at=a.expires_at, age_seconds=a.age(at).total_seconds(), production_model_id=a.production_model_id,
            comparison=comparison_rows(a), reasons=a.reasons,
        )
        for a in approvals
    ]


class StaleCheck(BaseModel):
    """Whether production changed while the candidate waited and, if so, whether the candidate still wins.

    When it changed, the new production model was re-scored on the candidate's evaluation window
    (``window``) with the retrain flow's champion/challenger code; ``production_unscored`` says why that
    failed, in which case the candidate is not shown to win (never promoted without a comparison).
    """

    model_config = ConfigDict(protected_namespaces=())

    production_changed: bool
    still_better: bool
    current_production_id: str | None
    reasons: list[str]
    window: str | None = None
    production_metrics_on_window: dict[str, float] = {}
    candidate_metrics_on_window: dict[str, float] = {}  # what the policy compared (the unseen days when restricted)
    production_unscored: str | None = None

    @property
    def ok(self) -> bool:
        return not self.production_changed or self.still_better

    @property
    def verdict(self) -> str:
        """What a failed check says about the candidate, in a few words."""
        return "cannot be shown to beat production" if self.production_unscored else "no longer beats production"

    def summary(self) -> str:
        return "; ".join(self.reasons)


def rescore_production_for(
    approval: Approval, production: ModelInfo, registry: ModelRegistry, settings: Settings
) -> ChampionScore:
    """``production`` re-scored on the window the waiting candidate was evaluated on (Qlib is imported here)."""
    from tasks.core.approvals.champion import score_production_for_waiting_candidate

    candidate = registry.get_model_info(approval.model_id)
    return score_production_for_waiting_candidate(production, candidate, approval.evaluated_on, registry=registry,
                                                  settings=settings)


def check_still_better(approval: Approval, registry: ModelRegistry, *, settings: Settings) -> StaleCheck:
    """Re-run the request's policy against today's production if production changed since the request.

    The new production model is scored on the candidate's window with the shared scoring function and
    evaluation (as the retrain flow's champion/challenger does), and the policy decides as in auto mode
    (:func:`registry.policy.decide_on_window`): a production model that cannot be scored there fails the
    check with the reason; the recorded metrics of production, measured on other days, are never used.
    ``settings`` name the data directory and MLflow store.
    """
    current = registry.get_production_model(approval.model_name)
    current_id = current.model_id if current else None
    if current_id == approval.production_model_id:
        return StaleCheck(production_changed=False, still_better=True, current_production_id=current_id,
                          reasons=[f"production is still {current_id or 'empty'}, as when the approval was requested"])
    changed = (f"production changed since the request: {approval.production_model_id or 'none'} -> "
               f"{current_id or 'none'}")
    policy = PromotionPolicy.model_validate({**approval.policy, "approval": "auto"})
    if current is None:
        decision = decide_promotion(approval.candidate_metrics, None, policy)
        return StaleCheck(production_changed=True, still_better=decision.better, current_production_id=None,
                          reasons=[changed, *_policy_reasons(decision)])
    score = rescore_production_for(approval, current, registry, settings)
    candidate_metrics = score.candidate_metrics or approval.candidate_metrics
    decision = decide_on_window(candidate_metrics, score.metrics if score.scored else None, policy,
                                window=score.window_text, production_unscored=score.error, note=score.note)
    return StaleCheck(
        production_changed=True, still_better=decision.better, current_production_id=current_id,
        reasons=[changed, *_policy_reasons(decision)], window=score.window_text,
        production_metrics_on_window=score.metrics, candidate_metrics_on_window=candidate_metrics,
        production_unscored=score.error,
    )


def _policy_reasons(decision: Decision) -> list[str]:
    """The policy's reasons without the approval-mode lines (the check runs the policy as in auto mode)."""
    return [r for r in decision.reasons if not r.startswith("approval mode")]


class AnswerOutcome(BaseModel):
    """What an answer did: the request as it now stands, whether this answer's decision holds, and why not."""

    approval: Approval
    decided: bool
    refusal: str | None = None
    check: StaleCheck | None = None


def take_answer(
    registry: ModelRegistry,
    model_id: str,
    decision: Answer,
    *,
    approver: str,
    comment: str = "",
    force: bool = False,
    flow_run_id: str | None = None,
    close_on_stale: bool,
    settings: Settings,
) -> AnswerOutcome:
    """Decide a pending request with this answer, exactly once; refuse (and record) it otherwise.

    An approval is first checked against today's production (`check_still_better`); unless `force`, a
    candidate that no longer wins is refused. `close_on_stale` ends the request then (the run's own check:
    its form cannot be asked again); the CLI leaves it open so that someone may reject or force it.
    The answer that already decided the request (`qmp approve` decides, then resumes the run with the same
    answer) is recognised and returned as decided, not refused a second time.
    """
    approvals = Approvals(registry)
    current = approvals.require(model_id)
    if not current.pending and current.decided_by == approver and (current.comment or "") == comment:
        return AnswerOutcome(approval=current, decided=True)
    check = None
    if current.pending and decision == "approve":
        check = check_still_better(current, registry, settings=settings)
        if not check.ok and not force:
            reason = f"approval by {approver} refused: {model_id} {check.verdict} ({check.summary()})"
            closed = approvals.refuse(model_id, actor=approver, reason=reason, close=close_on_stale,
                                      flow_run_id=flow_run_id)
            return AnswerOutcome(approval=closed, decided=False, refusal=reason, check=check)
    forced = force and check is not None and not check.ok
    claim = approvals.decide(model_id, decision, approver=approver, comment=comment, forced=forced,
                             flow_run_id=flow_run_id)
    return AnswerOutcome(approval=claim.approval, decided=claim.won, refusal=claim.refusal, check=check)
