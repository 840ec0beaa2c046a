"""The live_metrics and monitor_settings tables' SQL: days inserted, a range deleted, days and rules read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from registry.live import LiveScore
from registry.store.tables import LIVE_METRICS, MONITOR_SETTINGS

LIVE_COLUMNS = ("model_name", "trading_date", "model_id", "ic", "rank_ic", "instruments", "signal_return", "top_k",
                "data_version", "computed_at", "flow_run_id")


def delete_days(session: Session, model_name: str, first: date, last: date) -> list[date]:
    """Delete the live metrics of `model_name` in [first, last]; returns the days that went."""
    m = LIVE_METRICS.c
    gone = days_between(session, model_name, first, last)
    session.execute(delete(LIVE_METRICS).where(m.model_name == model_name, m.trading_date.between(first, last)))
    return gone


def rows_of(
    model_name: str, scores: Sequence[LiveScore], *, data_version: str, now: datetime, flow_run_id: str | None
) -> list[dict[str, Any]]:
    """The table rows of `scores`."""
    return [{**score.model_dump(), "model_name": model_name, "data_version": data_version, "computed_at": now,
             "flow_run_id": flow_run_id} for score in scores]


def insert_days(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert live metric rows (dicts of the table's columns)."""
    if rows:
        session.execute(insert(LIVE_METRICS), list(rows))


def days_between(session: Session, model_name: str, first: date, last: date) -> list[date]:
    """The days in [first, last] with live metrics for `model_name`, in order."""
    m = LIVE_METRICS.c
    return sorted(session.scalars(
        select(m.trading_date).where(m.model_name == model_name, m.trading_date.between(first, last))
    ))


def read_days(session: Session, model_name: str, first: date | None, last: date | None) -> list[dict[str, Any]]:
    """The live metric rows of `model_name` in [first, last] (an open end when None), by day."""
    m = LIVE_METRICS.c
    query = select(*(m[name] for name in LIVE_COLUMNS)).where(m.model_name == model_name)
    if first is not None:
        query = query.where(m.trading_date >= first)
    if last is not None:
        query = query.where(m.trading_date <= last)
    return [dict(row._mapping) for row in session.execute(query.order_by(m.trading_date))]


def read_rule(session: Session, model_name: str) -> dict[str, Any] | None:
    """The stored drift rule settings of `model_name`, if any."""
    s = MONITOR_SETTINGS.c
    value = session.scalar(select(s.rule).where(s.model_name == model_name))
    return dict(value) if isinstance(value, dict) else None


def write_rule(session: Session, model_name: str, rule: dict[str, Any], *, actor: str, now: datetime) -> None:
    """Replace the drift rule settings of `model_name`."""
    s = MONITOR_SETTINGS.c
    session.execute(delete(MONITOR_SETTINGS).where(s.model_name == model_name))
    session.execute(insert(MONITOR_SETTINGS).values(model_name=model_name, rule=rule, updated_at=now, updated_by=actor))
