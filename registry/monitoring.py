"""Live metrics and drift settings in the registry: days written once (re-runs add only new days), read back
by name, and each name's drift rule.

A write holds the name's row lock, the lock predictions and promotions take.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy.orm import Session

from registry import store
from registry.drift import DriftRule, stored_rule
from registry.errors import ModelNotFoundError
from registry.live import LiveDay, LiveScore, LiveWrite
from registry.store import live_metrics as live_table


def write(
    session: Session, model_name: str, scores: Sequence[LiveScore], *, data_version: str, spec: store.EventSpec,
    now: datetime,
) -> LiveWrite:
    """Store the days of ``scores`` that have no live metrics yet, in the caller's transaction."""
    if not store.lock_name(session, model_name, now, create=False):
        raise ModelNotFoundError(f"model name {model_name!r} not found in registry")
    result = LiveWrite(model_name=model_name)
    if not scores:
        return result
    days = [score.trading_date for score in scores]
    stored = set(live_table.days_between(session, model_name, min(days), max(days)))
    fresh: dict[date, LiveScore] = {}
    for score in scores:
        if score.trading_date not in stored:
            fresh.setdefault(score.trading_date, score)
    live_table.insert_days(session, live_table.rows_of(model_name, list(fresh.values()), data_version=data_version,
                                                       now=now, flow_run_id=spec.flow_run_id))
    result.written_days = sorted(fresh)
    return result


def read(session: Session, model_name: str, first: date | None = None, last: date | None = None) -> list[LiveDay]:
    """The stored live days of ``model_name`` in [first, last], oldest first."""
    return [LiveDay(**row) for row in live_table.read_days(session, model_name, first, last)]


def rule(session: Session, model_name: str) -> DriftRule:
    """The name's drift rule: its stored settings, else the default."""
    return stored_rule(live_table.read_rule(session, model_name))


def set_rule(session: Session, model_name: str, new_rule: DriftRule, *, actor: str, now: datetime) -> None:
    """Store the name's drift rule (the name must exist)."""
    if not store.lock_name(session, model_name, now, create=False):
        raise ModelNotFoundError(f"model name {model_name!r} not found in registry")
    live_table.write_rule(session, model_name, new_rule.model_dump(), actor=actor, now=now)
