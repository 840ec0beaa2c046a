"""Asking a person: record the request, wait without holding a process, apply exactly one decision.

A deployment run suspends (`suspend_flow_run`): it leaves the worker and Prefect reschedules it when it is
resumed, from the top of the flow, in a new process. The retrain flow therefore looks up this flow run's
request first (`resumed_request`) and goes straight back here, skipping data, training and evaluation.
A run outside a deployment (`qmp retrain`) cannot suspend and waits with a blocking pause instead.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from prefect import get_run_logger, pause_flow_run, suspend_flow_run, task
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.states import Cancelled
from pydantic import Field

from flows.concurrency import one_at_a_time
from flows.options import ApprovalSettings
from flows.reporting import artifact_key
from registry import Approval, Approvals, ApprovalState, ModelInfo
from registry.approvals import EvaluatedOn
from registry.policy import Action, Decision, PromotionPolicy
from registry.settings import load_settings
from tasks import registry_steps as reg
from tasks.core.approvals.requests import AnswerOutcome, take_answer
from tasks.core.errors import PipelineError
from tasks.core.lifecycle import open_registry


class ApprovalInput(RunInput):
    """An explicit decision: there is deliberately no default, so a form submitted without a choice is refused."""

    decision: Literal["approve", "reject"] = Field(
        title="Decision",
        description="approve: promote this candidate to production. reject: it stays a candidate. No default: choose one.",
    )
    approver: str = Field(min_length=1, max_length=256, description="Your name; recorded in the registry history.")
    comment: str = Field("", max_length=2000, description="Why; recorded in the registry history.")
    force: bool = Field(
        False, title="Force",
        description="Approve even if production changed while this candidate waited and it no longer beats the "
                    "new production model (recorded as forced).",
    )


def approval_form(description: str) -> type[ApprovalInput]:
    """The form with the comparison as its text; `with_initial_data` gets no field values, so none has a default."""
    return ApprovalInput.with_initial_data(description=description)


def approval_key(model_id: str) -> str:
    return artifact_key("approve", model_id)


def _run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


@task(name="request approval", retries=2, retry_delay_seconds=2)
def record_request(info: ModelInfo, production: ModelInfo | None, decision: Decision, policy: PromotionPolicy,
                   timeout_seconds: int, evaluated_on: EvaluatedOn | None = None,
                   production_on_window: dict[str, float] | None = None) -> tuple[Approval, list[Approval]]:
    """Idempotent: a resumed or retried run gets its own request back.

    The comparison recorded is the one the policy made: production's metrics on the candidate's window
    when it was re-scored there, else its registered metrics.
    """
    on_window = {k: v for k, v in (production_on_window or {}).items() if math.isfinite(v)}  # JSON has no NaN
    production_metrics = on_window or (production.performance_metrics if production else None)
    return Approvals(open_registry(load_settings())).request(
        info.model_id, production_model_id=production.model_id if production else None,
        candidate_metrics=info.performance_metrics, production_metrics=production_metrics,
        reasons=decision.reasons, policy=policy.model_dump(mode="json"), timeout=timedelta(seconds=timeout_seconds),
        flow_run_id=_run_id(), evaluated_on=evaluated_on,
    )


@task(name="record approval answer", retries=2, retry_delay_seconds=2)
def record_answer(model_id: str, answer: ApprovalInput) -> AnswerOutcome:
    """Retrying is safe: the answer that decided the request is recognised as its own."""
    settings = load_settings()
    return take_answer(open_registry(settings), model_id, answer.decision, approver=answer.approver,
                       comment=answer.comment, force=answer.force, flow_run_id=_run_id(), close_on_stale=True,
                       settings=settings)


def resumed_request(model_name: str) -> tuple[ModelInfo, ModelInfo | None, Decision] | None:
    """This flow run's own approval request, if it made one: the run was resumed (or retried) after asking."""
    run_id = _run_id()
    if run_id is None:
        return None
    registry = open_registry(load_settings())
    approval = Approvals(registry).by_flow_run(model_name, run_id)
    if approval is None:
        return None
    get_run_logger().info("resumed after asking for approval of %s: no retraining", approval.model_id)
    decision = Decision(action=Action.NEEDS_APPROVAL, reasons=approval.reasons)
    return registry.get_model_info(approval.model_id), registry.get_production_model(model_name), decision


def end_waiting_runs(approvals: list[Approval], message: str) -> None:
    """End the runs still waiting on closed requests: a suspended run is cancelled (it holds no process);
    a blocking pause is resumed with the closing answer, which its run recognises as the decision."""
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        for approval in approvals:
            if approval.flow_run_id is None:
                continue
            run = client.read_flow_run(UUID(approval.flow_run_id))
            if run.state is None or not run.state.is_paused():
                continue
            if run.state.state_details.pause_reschedule:
                client.set_flow_run_state(run.id, Cancelled(message=f"{approval.model_id}: {message}"), force=True)
            else:
                client.resume_flow_run(run.id, run_input={"decision": "reject", "approver": approval.decided_by,
                                                          "comment": approval.comment or "", "force": False})
            logger.info("ended run %s waiting for %s: %s", run.name, approval.model_id, message)


def wait_for_answer(form: type[ApprovalInput], approval: Approval, settings: ApprovalSettings) -> ApprovalInput | None:
    """Suspend (deployment) or pause (no deployment) until answered; None when the pause timed out."""
    seconds = max(1, math.ceil((approval.expires_at - datetime.now(UTC)).total_seconds()) + 1)
    key = approval_key(approval.model_id)
    if deployment.get_id():
        return suspend_flow_run(wait_for_input=form, timeout=seconds, key=key)
    try:
        return pause_flow_run(wait_for_input=form, timeout=seconds, poll_interval=settings.poll_interval_seconds, key=key)
    except FlowPauseTimeout:
        return None


#: What a request ended as: (new production or None, "approved" | "rejected" | "timed_out" | "kept", who, message).
Answered = tuple[ModelInfo | None, str, str | None, str]


def apply(outcome: AnswerOutcome, info: ModelInfo) -> Answered:
    """Promote when the request stands approved; otherwise say why nothing changed."""
    approval = outcome.approval
    if outcome.refusal:
        get_run_logger().warning(outcome.refusal)
    if approval.state == ApprovalState.APPROVED:
        with one_at_a_time("promote", info.model_name):
            new = reg.promote_model(info.model_id, approval.decided_by or "unknown", approval.comment or "approved")
        forced = " (forced)" if approval.forced else ""
        return new, "approved", approval.decided_by, f"{approval.decided_by} approved{forced}: {new.model_id} is production"
    if approval.state == ApprovalState.REJECTED:
        return None, "rejected", approval.decided_by, f"{approval.decided_by} rejected {info.model_id}: it stays {info.status.value}"
    return None, "kept", None, f"{outcome.refusal or approval.closed_reason()}: {info.model_id} stays {info.status.value}"


def request_approval(info: ModelInfo, production: ModelInfo | None, decision: Decision, policy: PromotionPolicy,
                     settings: ApprovalSettings, description: str, *, evaluated_on: EvaluatedOn | None = None,
                     production_on_window: dict[str, float] | None = None) -> Answered:
    """Record the request (superseding older ones), wait for the answer, apply it; (new production, message).

    ``evaluated_on`` (segment and data directory of the candidate's evaluation) lets the stale-approval
    check re-score a new production model on the candidate's window.
    """
    approval, superseded = record_request(info, production, decision, policy, settings.timeout_seconds,
                                          evaluated_on, production_on_window)
    if superseded:
        end_waiting_runs(superseded, f"superseded by {info.model_id}")
    answer = wait_for_answer(approval_form(description), approval, settings)
    if answer is None:
        Approvals(open_registry(load_settings())).expire(model_id=info.model_id, actor="retrain-flow", flow_run_id=_run_id())
        message = f"no approval within {settings.timeout_seconds} s: {info.model_id} stays {info.status.value}"
        get_run_logger().warning(message)
        return None, "timed_out", None, message
    return apply(record_answer(info.model_id, answer), info)


class NotResumableError(PipelineError, RuntimeError):
    """The run that asked cannot take this answer (gone, not waiting, or the answer breaks its form)."""


def check_resumable(approval: Approval, answer: ApprovalInput) -> None:
    """Refuse, before anything is decided, an answer the waiting run's form would not accept."""
    if approval.flow_run_id is None:
        raise NotResumableError(f"{approval.model_id}: the request names no flow run to resume")
    from prefect.utilities.schema_tools import ValidationError, validate

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(approval.flow_run_id))
        except ObjectNotFound:
            raise NotResumableError(f"{approval.model_id}: flow run {approval.flow_run_id} no longer exists") from None
        state = run.state
        if state is None or not state.is_paused() or not state.state_details.run_input_keyset:
            what = state.name if state else "without a state"
            raise NotResumableError(f"{approval.model_id}: flow run {run.name} is {what}, not waiting for an answer")
        schema = json.loads(client.read_flow_run_input(run.id, state.state_details.run_input_keyset["schema"]))
    try:
        validate(answer.model_dump(mode="json"), schema, raise_on_error=True)
    except ValidationError as exc:
        raise NotResumableError(f"{approval.model_id}: the answer does not fit the run's form: {exc}") from None


def resume_with_answer(approval: Approval, answer: ApprovalInput) -> Literal["resumed", "already resumed"]:
    """Resume the run that asked with the same input model the form produces (the CLI's path)."""
    from prefect.flow_runs import resume_flow_run

    if approval.flow_run_id is None:
        raise NotResumableError(f"{approval.model_id}: the request names no flow run to resume")
    try:
        resume_flow_run(UUID(approval.flow_run_id), run_input=answer.model_dump(mode="json"))
    except NotPausedError:
        return "already resumed"  # the UI's answer resumed it: the run applies the registry's decision
    return "resumed"


@task(name="time out expired approvals", retries=2, retry_delay_seconds=5)
def sweep_expired_approvals() -> list[Approval]:
    """Record the timeout of every request past its deadline, also of suspended runs nothing is running for."""
    expired = Approvals(open_registry(load_settings())).expire(actor="cleanup flow", flow_run_id=_run_id())
    if expired:
        end_waiting_runs(expired, "approval timed out")
        get_run_logger().info("approvals timed out: %s", ", ".join(a.model_id for a in expired))
    return expired
