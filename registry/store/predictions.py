"""The predictions table's SQL: scores inserted in chunks, a range deleted, stored days and scores read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from registry.store.tables import PREDICTIONS, VERSIONS

INSERT_CHUNK = 5_000  # rows per INSERT statement
SCORE_COLUMNS = ("model_id", "model_name", "trading_date", "instrument", "score", "data_version", "created_at",
                 "flow_run_id")


def delete_scores(session: Session, model_name: str, first: date, last: date) -> int:
    """Delete the scores of `model_name` in [first, last]; returns how many rows went."""
    p = PREDICTIONS.c
    deleted = session.execute(delete(PREDICTIONS).where(p.model_name == model_name, p.trading_date.between(first, last)))
    return int(getattr(deleted, "rowcount", 0) or 0)


def insert_scores(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert score rows (dicts of the predictions table's columns)."""
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(PREDICTIONS), rows[start:start + INSERT_CHUNK])


def versions_of_name(session: Session, model_name: str, model_ids: set[str]) -> set[str]:
    """Which of `model_ids` are versions of `model_name`."""
    v = VERSIONS.c
    return set(session.scalars(select(v.model_id).where(v.model_name == model_name, v.model_id.in_(model_ids))))


def days_between(session: Session, model_name: str, first: date, last: date) -> list[date]:
    """The days in [first, last] with stored scores for `model_name`, in order."""
    p = PREDICTIONS.c
    return sorted(session.scalars(
        select(p.trading_date).distinct().where(p.model_name == model_name, p.trading_date.between(first, last))
    ))


def last_day(session: Session, model_name: str) -> date | None:
    """The last trading day with stored scores for `model_name`."""
    p = PREDICTIONS.c
    value = session.scalar(select(func.max(p.trading_date)).where(p.model_name == model_name))
    return value if isinstance(value, date) else None


def scores(session: Session, model_name: str, first: date | None, last: date | None) -> list[dict[str, Any]]:
    """The stored scores of `model_name` in [first, last] (an open end when None), by day, best score first."""
    p = PREDICTIONS.c
    query = select(*(p[name] for name in SCORE_COLUMNS)).where(p.model_name == model_name)
    if first is not None:
        query = query.where(p.trading_date >= first)
    if last is not None:
        query = query.where(p.trading_date <= last)
    query = query.order_by(p.trading_date, p.score.desc(), p.instrument)
    return [dict(row._mapping) for row in session.execute(query)]
