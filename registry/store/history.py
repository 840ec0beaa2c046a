"""The append-only history: events of a name or model, production at a time, earlier production models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from registry.models import (
    ModelEvent,
)
from registry.statuses import ModelStatus
from registry.store.tables import (
    ModelEventRow,
)


def events(
    session: Session, *, model_name: str | None, model_id: str | None, limit: int | None
) -> list[ModelEvent]:
    if "\x00" in (model_name or "") + (model_id or ""):
        return []  # nothing holds NUL, and PostgreSQL refuses to compare with it
    query = select(ModelEventRow)
    if model_name is not None:
        query = query.where(ModelEventRow.model_name == model_name)
    if model_id is not None:
        query = query.where(ModelEventRow.model_id == model_id)
    query = query.order_by(ModelEventRow.id)
    if limit is not None:
        query = query.order_by(None).order_by(ModelEventRow.id.desc()).limit(limit)
    rows = session.scalars(query).all()
    if limit is not None:
        rows = list(reversed(rows))
    return [
        ModelEvent(
            event_id=r.id,
            model_id=r.model_id,
            model_name=r.model_name,
            event=r.event,
            from_status=ModelStatus(r.from_status) if r.from_status else None,
            to_status=ModelStatus(r.to_status) if r.to_status else None,
            actor=r.actor,
            reason=r.reason,
            flow_run_id=r.flow_run_id,
            created_at=r.created_at,
        )
        for r in rows
    ]


def production_at(session: Session, model_name: str, when: datetime) -> str | None:
    """The model that was production for `model_name` at `when`, read from the history."""
    latest = session.execute(
        select(ModelEventRow.model_id, ModelEventRow.to_status)
        .where(
            ModelEventRow.model_name == model_name,
            ModelEventRow.created_at <= when,
            (ModelEventRow.to_status == ModelStatus.PRODUCTION.value)
            | (ModelEventRow.from_status == ModelStatus.PRODUCTION.value),
        )
        .order_by(ModelEventRow.id.desc())
        .limit(1)
    ).one_or_none()
    if latest is None or latest[1] != ModelStatus.PRODUCTION.value:
        return None
    return str(latest[0])


def previous_production_ids(session: Session, model_name: str, exclude: str | None) -> list[str]:
    """Models that were promoted under `model_name`, most recent first, excluding `exclude`."""
    query = (
        select(ModelEventRow.model_id, func.max(ModelEventRow.id).label("last"))
        .where(ModelEventRow.model_name == model_name, ModelEventRow.to_status == ModelStatus.PRODUCTION.value)
        .group_by(ModelEventRow.model_id)
        .order_by(func.max(ModelEventRow.id).desc())
    )
    return [mid for mid, _ in session.execute(query) if mid != exclude]
