"""Approval requests' SQL: read, insert and close request rows, and the conditional UPDATE that decides one.

Rows come back as `ApprovalRecord`s (plain values); `registry.approvals` turns them into `Approval`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, insert, select, update
from sqlalchemy.orm import Session

from registry.store.tables import APPROVALS, STATES, VERSIONS

PENDING = "pending"


@dataclass(frozen=True)
class ApprovalRecord:
    """One row of the approvals table, as plain values."""

    id: int
    model_id: str
    model_name: str
    flow_run_id: str | None
    state: str
    requested_at: datetime
    expires_at: datetime
    production_model_id: str | None
    comparison: dict[str, Any] | None
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    forced: bool | None


def _records(session: Session, query: Select[Any]) -> list[ApprovalRecord]:
    return [ApprovalRecord(**row._mapping) for row in session.execute(query)]


def approval_of(session: Session, model_id: str, *, for_update: bool = False) -> ApprovalRecord | None:
    """The request of `model_id` (locked when `for_update`), or None if none was made."""
    query = select(APPROVALS).where(APPROVALS.c.model_id == model_id)
    found = _records(session, query.with_for_update() if for_update else query)
    return found[0] if found else None


def approval_by_flow_run(session: Session, model_name: str, flow_run_id: str) -> ApprovalRecord | None:
    """A request the flow run `flow_run_id` made for `model_name`, or None."""
    query = select(APPROVALS).where(APPROVALS.c.model_name == model_name, APPROVALS.c.flow_run_id == flow_run_id)
    row = session.execute(query).first()
    return ApprovalRecord(**row._mapping) if row is not None else None


def add_approval(
    session: Session, *, model_id: str, model_name: str, flow_run_id: str | None, requested_at: datetime,
    expires_at: datetime, production_model_id: str | None, comparison: dict[str, Any],
) -> ApprovalRecord:
    """Insert a pending request and return it."""
    values: dict[str, Any] = dict(
        model_id=model_id, model_name=model_name, flow_run_id=flow_run_id, state=PENDING,
        requested_at=requested_at, expires_at=expires_at, production_model_id=production_model_id,
        comparison=comparison, forced=False,
    )
    pk = session.execute(insert(APPROVALS).values(values).returning(APPROVALS.c.id)).scalar_one()
    return ApprovalRecord(id=int(pk), decided_by=None, decided_at=None, comment=None, **values)


def lock_other_pending(session: Session, model_name: str, model_id: str) -> list[ApprovalRecord]:
    """The pending requests of `model_name` other than `model_id`'s, locked."""
    query = select(APPROVALS).where(
        APPROVALS.c.model_name == model_name, APPROVALS.c.state == PENDING, APPROVALS.c.model_id != model_id
    ).with_for_update()
    return _records(session, query)


def close_approval(
    session: Session, record: ApprovalRecord, state: str, *, actor: str, comment: str | None, now: datetime
) -> ApprovalRecord:
    """Record `state` as the decision of a request the caller holds locked; returns the request as it now is."""
    session.execute(update(APPROVALS).where(APPROVALS.c.id == record.id)
                    .values(state=state, decided_by=actor, decided_at=now, comment=comment))
    return replace(record, state=state, decided_by=actor, decided_at=now, comment=comment)


def claim_decision(
    session: Session, model_id: str, state: str, *, approver: str, comment: str, forced: bool, now: datetime
) -> bool:
    """Decide the request if it is still pending and not expired; whether this call decided it.

    The WHERE clause is re-checked against the committed row, so of concurrent claims exactly one changes it.
    """
    result = session.execute(
        update(APPROVALS)
        .where(APPROVALS.c.model_id == model_id, APPROVALS.c.state == PENDING, APPROVALS.c.expires_at > now)
        .values(state=state, decided_by=approver, decided_at=now, comment=comment, forced=forced)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def open_approvals(
    session: Session, model_name: str | None, now: datetime, live_statuses: Sequence[str]
) -> list[ApprovalRecord]:
    """Pending requests not expired at `now` whose model has one of `live_statuses`, oldest first."""
    query = (
        select(APPROVALS)
        .join(VERSIONS, VERSIONS.c.model_id == APPROVALS.c.model_id)
        .join(STATES, STATES.c.model_pk == VERSIONS.c.id)
        .where(APPROVALS.c.state == PENDING, APPROVALS.c.expires_at > now, STATES.c.status.in_(live_statuses))
        .order_by(APPROVALS.c.requested_at, APPROVALS.c.id)
    )
    if model_name is not None:
        query = query.where(APPROVALS.c.model_name == model_name)
    return _records(session, query)


def lock_expired(session: Session, now: datetime, model_id: str | None) -> list[ApprovalRecord]:
    """Pending requests past their deadline at `now` (of `model_id` only, when given), locked, in id order."""
    query = select(APPROVALS).where(APPROVALS.c.state == PENDING, APPROVALS.c.expires_at <= now)
    if model_id is not None:
        query = query.where(APPROVALS.c.model_id == model_id)
    return _records(session, query.order_by(APPROVALS.c.id).with_for_update())
