"""Approvals: a request for a person's decision on a model version, decided exactly once.

The decision is one conditional UPDATE of the request's row (`WHERE state = 'pending' AND expires_at > now`):
of two concurrent answers exactly one changes the row, and the other is told who won and when. Every
request, decision, refusal, timeout and supersession is also an event of the model's history, written in
the same transaction as the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from registry import store
from registry.errors import ModelRegistryError
from registry.statuses import EventKind, ModelStatus
from registry.store import approvals as rows
from registry.store.approvals import ApprovalRecord
from registry.store.tables import as_utc

if TYPE_CHECKING:
    from registry.service import ModelRegistry

Answer = Literal["approve", "reject"]


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REFUSED = "refused"  # an approval the stale check turned down
    TIMED_OUT = "timed_out"
    SUPERSEDED = "superseded"


class ApprovalClosedError(ModelRegistryError):
    """The model is not awaiting approval: never asked, already decided, timed out or superseded."""


class EvaluatedOn(BaseModel):
    """Where the candidate was evaluated: what re-scoring another model on the candidate's days needs.

    The days themselves are those of the label the candidate's evaluation saved in its recorder.
    """

    model_config = ConfigDict(frozen=True)

    segment: str = "test"
    provider_uri: str | None = None


class Approval(BaseModel):
    """One approval request: what the person was shown and, once decided, who decided what and when."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_id: str
    model_name: str
    flow_run_id: str | None
    state: ApprovalState
    requested_at: datetime
    expires_at: datetime
    production_model_id: str | None
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float] | None
    reasons: list[str]
    policy: dict[str, Any]
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    forced: bool = False
    evaluated_on: EvaluatedOn | None = None  # None on requests recorded without it

    @property
    def pending(self) -> bool:
        return self.state == ApprovalState.PENDING

    @property
    def answer(self) -> Answer | None:
        """The decision a person took, if one did."""
        return {ApprovalState.APPROVED: "approve", ApprovalState.REJECTED: "reject"}.get(self.state)  # type: ignore[return-value]

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.requested_at

    def closed_reason(self) -> str:
        """Why an answer to this request is refused, in one line."""
        when = f"{self.decided_at:%Y-%m-%d %H:%M:%S} UTC" if self.decided_at else "?"
        if self.state in (ApprovalState.APPROVED, ApprovalState.REJECTED):
            return f"{self.model_id} was already {self.state.value} by {self.decided_by} at {when}"
        if self.state == ApprovalState.TIMED_OUT:
            return f"the approval of {self.model_id} timed out at {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        if self.state == ApprovalState.SUPERSEDED:
            return f"{self.model_id} was superseded at {when}: {self.comment}"
        if self.state == ApprovalState.REFUSED:
            return f"the approval of {self.model_id} was refused at {when}: {self.comment}"
        return f"{self.model_id} is awaiting approval"


@dataclass(frozen=True)
class Claim:
    """The outcome of an answer: whether it decided the request, and the request as it now stands."""

    won: bool
    approval: Approval
    refusal: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _approval(row: ApprovalRecord) -> Approval:
    comparison = row.comparison or {}
    evaluated_on = comparison.get("evaluated_on")
    return Approval(
        model_id=row.model_id, model_name=row.model_name, flow_run_id=row.flow_run_id,
        state=ApprovalState(row.state), requested_at=as_utc(row.requested_at),  # type: ignore[arg-type]
        expires_at=as_utc(row.expires_at),  # type: ignore[arg-type]
        production_model_id=row.production_model_id,
        candidate_metrics=comparison.get("candidate") or {}, production_metrics=comparison.get("production"),
        reasons=comparison.get("reasons") or [], policy=comparison.get("policy") or {},
        decided_by=row.decided_by, decided_at=as_utc(row.decided_at), comment=row.comment, forced=bool(row.forced),
        evaluated_on=EvaluatedOn.model_validate(evaluated_on) if evaluated_on else None,
    )


def _close(session: Session, row: ApprovalRecord, state: ApprovalState, *, actor: str, comment: str | None,
           event: str, spec: store.EventSpec, now: datetime) -> ApprovalRecord:
    """Close a pending request the caller holds locked, clear the model's awaiting flag, record the event;
    returns the request as it now stands."""
    closed = rows.close_approval(session, row, state.value, actor=actor, comment=comment, now=now)
    model = store.get_state(session, row.model_id, for_update=True)
    store.set_awaiting_approval(session, model.pk, False, now)
    store.add_event(session, model_id=row.model_id, model_name=row.model_name, event=event,
                    from_status=model.status, to_status=model.status, spec=spec, now=now)
    return closed


class Approvals:
    """The approval requests of one registry (same database, same transactions as its history)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.db = registry.db

    def request(
        self,
        model_id: str,
        *,
        production_model_id: str | None,
        candidate_metrics: Mapping[str, float],
        production_metrics: Mapping[str, float] | None,
        reasons: Sequence[str],
        policy: Mapping[str, Any],
        timeout: timedelta,
        actor: str = "retrain-flow",
        flow_run_id: str | None = None,
        now: datetime | None = None,
        evaluated_on: EvaluatedOn | None = None,
    ) -> tuple[Approval, list[Approval]]:
        """Ask for a person's decision on `model_id`; older pending requests of its name are superseded.

        `evaluated_on` records where the candidate was evaluated, for the stale-approval check. Returns (this request, the requests it superseded). Asking again for the same model returns its
        request as it stands (a resumed or retried run), without a second event.
        """
        comparison = {"candidate": dict(candidate_metrics),
                      "production": dict(production_metrics) if production_metrics is not None else None,
                      "reasons": list(reasons), "policy": dict(policy),
                      **({"evaluated_on": evaluated_on.model_dump(mode="json")} if evaluated_on else {})}

        def unit(session: Session) -> tuple[Approval, list[Approval]]:
            name, _ = store.name_and_status(session, model_id)
            at = now or _now()
            store.lock_name(session, name, at, create=False)  # one request of a name at a time
            existing = rows.approval_of(session, model_id)
            if existing is not None:
                return _approval(existing), []
            spec = store.EventSpec(actor, "; ".join(reasons) or None, flow_run_id)
            row = rows.add_approval(session, model_id=model_id, model_name=name, flow_run_id=flow_run_id,
                                    requested_at=at, expires_at=at + timeout,
                                    production_model_id=production_model_id, comparison=comparison)
            superseded = []
            for old in rows.lock_other_pending(session, name, model_id):
                why = f"superseded by {model_id}, a newer candidate awaiting approval"
                closed = _close(session, old, ApprovalState.SUPERSEDED, actor=actor, comment=why,
                                event=EventKind.APPROVAL_SUPERSEDED, spec=store.EventSpec(actor, why, flow_run_id),
                                now=at)
                superseded.append(_approval(closed))
            model = store.get_state(session, model_id, for_update=True)
            store.set_awaiting_approval(session, model.pk, True, at)
            store.add_event(session, model_id=model_id, model_name=name, event=EventKind.APPROVAL_REQUESTED,
                            from_status=model.status, to_status=model.status, spec=spec, now=at)
            return _approval(row), superseded

        return self.db.run(unit)

    def get(self, model_id: str) -> Approval | None:
        """The approval request of `model_id`, or None if none was made."""
        row = self.db.run(lambda session: rows.approval_of(session, model_id), read_only=True)
        return _approval(row) if row is not None else None

    def by_flow_run(self, model_name: str, flow_run_id: str) -> Approval | None:
        """The request the flow run `flow_run_id` made for `model_name` (a resumed run finds its own)."""
        row = self.db.run(lambda session: rows.approval_by_flow_run(session, model_name, flow_run_id), read_only=True)
        return _approval(row) if row is not None else None

    def require(self, model_id: str) -> Approval:
        """The approval request of `model_id`; ApprovalClosedError if none was made."""
        approval = self.get(model_id)
        if approval is None:
            self.registry.get_model_info(model_id)  # an unknown id is ModelNotFoundError
            raise ApprovalClosedError(f"{model_id} is not awaiting approval: no approval was requested for it")
        return approval

    def pending(self, model_name: str | None = None, *, now: datetime | None = None) -> list[Approval]:
        """Requests still open (not expired, the model still registered or a candidate), oldest first."""
        at = now or _now()
        live = (ModelStatus.REGISTERED.value, ModelStatus.CANDIDATE.value)
        found = self.db.run(lambda session: rows.open_approvals(session, model_name, at, live), read_only=True)
        return [_approval(row) for row in found]

    def decide(
        self,
        model_id: str,
        answer: Answer,
        *,
        approver: str,
        comment: str = "",
        forced: bool = False,
        flow_run_id: str | None = None,
        now: datetime | None = None,
    ) -> Claim:
        """Take the decision if the request is still open; otherwise record the answer as refused.

        Exactly one of any number of concurrent answers wins: the UPDATE's WHERE clause is re-checked
        against the committed row, so the others change nothing and read who decided.
        """
        state = ApprovalState.APPROVED if answer == "approve" else ApprovalState.REJECTED

        def unit(session: Session) -> Claim:
            at = now or _now()
            won = rows.claim_decision(session, model_id, state.value, approver=approver, comment=comment,
                                      forced=forced, now=at)
            row = rows.approval_of(session, model_id, for_update=True)
            if row is None:
                raise ApprovalClosedError(f"{model_id} is not awaiting approval: no approval was requested for it")
            model = store.get_state(session, model_id, for_update=True)
            if won:
                store.set_awaiting_approval(session, model.pk, False, at)
                why = comment or ("approved" if answer == "approve" else "rejected")
                if forced:
                    why += " (forced past the stale-approval check)"
                event = EventKind.APPROVED if answer == "approve" else EventKind.APPROVAL_REJECTED
                store.add_event(session, model_id=model_id, model_name=row.model_name, event=event,
                                from_status=model.status, to_status=model.status,
                                spec=store.EventSpec(approver, why, flow_run_id), now=at)
                return Claim(True, _approval(row))
            if row.state == ApprovalState.PENDING.value:  # still open but past its deadline: close it now
                row = _close(session, row, ApprovalState.TIMED_OUT, actor=approver, comment="answered after the timeout",
                             event=EventKind.APPROVAL_TIMED_OUT,
                             spec=store.EventSpec(approver, f"no decision before {row.expires_at:%Y-%m-%d %H:%M:%S} UTC",
                                                  flow_run_id), now=at)
            closed = _approval(row)
            refusal = closed.closed_reason()
            store.add_event(session, model_id=model_id, model_name=row.model_name, event=EventKind.APPROVAL_REFUSED,
                            from_status=model.status, to_status=model.status,
                            spec=store.EventSpec(approver, f"{answer} refused: {refusal}", flow_run_id), now=at)
            return Claim(False, closed, refusal)

        return self.db.run(unit)

    def refuse(
        self, model_id: str, *, actor: str, reason: str, close: bool, flow_run_id: str | None = None,
        now: datetime | None = None,
    ) -> Approval:
        """Record an approval turned down by the stale check; `close` ends the request (the run's own check)."""

        def unit(session: Session) -> Approval:
            at = now or _now()
            row = rows.approval_of(session, model_id, for_update=True)
            if row is None:
                raise ApprovalClosedError(f"{model_id} is not awaiting approval: no approval was requested for it")
            spec = store.EventSpec(actor, reason, flow_run_id)
            if close and row.state == ApprovalState.PENDING.value:
                row = _close(session, row, ApprovalState.REFUSED, actor=actor, comment=reason,
                             event=EventKind.APPROVAL_REFUSED, spec=spec, now=at)
            else:
                model = store.get_state(session, model_id)
                store.add_event(session, model_id=model_id, model_name=row.model_name, event=EventKind.APPROVAL_REFUSED,
                                from_status=model.status, to_status=model.status, spec=spec, now=at)
            return _approval(row)

        return self.db.run(unit)

    def expire(
        self, *, model_id: str | None = None, actor: str = "approval-timeout", flow_run_id: str | None = None,
        now: datetime | None = None,
    ) -> list[Approval]:
        """Close every pending request past its deadline as timed out (the model stays what it is)."""

        def unit(session: Session) -> list[Approval]:
            at = now or _now()
            expired = []
            for row in rows.lock_expired(session, at, model_id):
                why = f"no decision before {as_utc(row.expires_at):%Y-%m-%d %H:%M:%S} UTC; the model keeps its status"
                closed = _close(session, row, ApprovalState.TIMED_OUT, actor=actor, comment=why,
                                event=EventKind.APPROVAL_TIMED_OUT, spec=store.EventSpec(actor, why, flow_run_id),
                                now=at)
                expired.append(_approval(closed))
            return expired

        return self.db.run(unit)
