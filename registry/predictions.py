"""The predictions store: the daily scores of production models, written a whole run at a time.

A write holds the name's row lock (the lock promotions take), so two predict runs of one name never
interleave. Without a recompute range a write adds only the trading days the name has no scores for
(re-running a day changes nothing); a recompute deletes the name's scores in the range and writes the new
ones in the same transaction, and records that in the history. Readers see a day's old scores or its new
ones, never a mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from registry import store
from registry.errors import InvalidModelError, ModelNotFoundError
from registry.live import LiveScore
from registry.statuses import EventKind
from registry.store import live_metrics as live_table
from registry.store import predictions as scores_table

RECOMPUTED_EVENT = EventKind.PREDICTIONS_RECOMPUTED


class Prediction(BaseModel):
    """One stored score."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_id: str
    model_name: str
    trading_date: date
    instrument: str
    score: float
    data_version: str
    created_at: datetime
    flow_run_id: str | None = None


@dataclass(frozen=True)
class ScoredDay:
    """The scores one model gave on one trading day, as the predict flow hands them to the store."""

    model_id: str
    trading_date: date
    scores: Sequence[tuple[str, float]]  # (instrument, score)


@dataclass
class PredictionWrite:
    """What one write did: the days and rows written, the days already stored and left alone."""

    model_name: str
    written_days: list[date] = field(default_factory=list)
    written_rows: int = 0
    skipped_days: list[date] = field(default_factory=list)
    replaced_rows: int = 0
    recompute: tuple[date, date] | None = None
    live_replaced_days: list[date] = field(default_factory=list)  # a recompute's live metrics deleted
    live_written_days: list[date] = field(default_factory=list)  # and written again from the new scores


def write(
    session: Session,
    model_name: str,
    days: Sequence[ScoredDay],
    *,
    data_version: str,
    spec: store.EventSpec,
    now: datetime,
    recompute: tuple[date, date] | None = None,
    live: Sequence[LiveScore] = (),
) -> PredictionWrite:
    """Write ``days`` for ``model_name`` in the caller's transaction (see the module docstring).

    A recompute also replaces the range's live metrics: the days gone and ``live``, the new scores' metrics
    on the days whose label is in the data, in the same transaction.
    """
    if not store.lock_name(session, model_name, now, create=False):
        raise ModelNotFoundError(f"model name {model_name!r} not found in registry")
    _check_models_belong(session, model_name, {day.model_id for day in days})
    result = PredictionWrite(model_name=model_name, recompute=recompute)
    if recompute is not None:
        _check_inside(recompute, days)
        result.replaced_rows = scores_table.delete_scores(session, model_name, *recompute)
        stored: set[date] = set()
    else:
        stored = stored_days(session, model_name, [d.trading_date for d in days])
    rows = _new_rows(result, model_name, days, stored, data_version=data_version, spec=spec, now=now)
    scores_table.insert_scores(session, rows)
    result.written_rows = len(rows)
    if recompute is not None:
        _replace_live_metrics(session, result, recompute, live, data_version=data_version, spec=spec, now=now)
        _record_recompute(session, result, days, data_version=data_version, spec=spec, now=now)
    return result


def _replace_live_metrics(
    session: Session, result: PredictionWrite, recompute: tuple[date, date], live: Sequence[LiveScore], *,
    data_version: str, spec: store.EventSpec, now: datetime,
) -> None:
    first, last = recompute
    result.live_replaced_days = live_table.delete_days(session, result.model_name, first, last)
    kept = [score for score in live if first <= score.trading_date <= last]
    live_table.insert_days(session, live_table.rows_of(result.model_name, kept, data_version=data_version, now=now,
                                                       flow_run_id=spec.flow_run_id))
    result.live_written_days = [score.trading_date for score in kept]


def _check_inside(recompute: tuple[date, date], days: Sequence[ScoredDay]) -> None:
    first, last = recompute
    outside = sorted(d.trading_date for d in days if not first <= d.trading_date <= last)
    if outside:
        raise InvalidModelError(f"recompute {first}..{last} was given scores for {outside[0]}, outside the range")


def _new_rows(
    result: PredictionWrite, model_name: str, days: Sequence[ScoredDay], stored: set[date], *, data_version: str,
    spec: store.EventSpec, now: datetime,
) -> list[dict[str, Any]]:
    """The rows of the days not in `stored`, noting written and skipped days in `result`."""
    rows: list[dict[str, Any]] = []
    for day in days:
        if day.trading_date in stored:
            result.skipped_days.append(day.trading_date)
            continue
        stored.add(day.trading_date)  # one model per name and day, even if a caller repeats a day
        result.written_days.append(day.trading_date)
        rows.extend(
            {"model_id": day.model_id, "trading_date": day.trading_date, "instrument": instrument,
             "model_name": model_name, "score": float(score), "data_version": data_version,
             "created_at": now, "flow_run_id": spec.flow_run_id}
            for instrument, score in day.scores
        )
    return rows


def _record_recompute(
    session: Session, result: PredictionWrite, days: Sequence[ScoredDay], *, data_version: str,
    spec: store.EventSpec, now: datetime,
) -> None:
    """A history event for each model whose scores a recompute wrote."""
    for model_id in sorted({d.model_id for d in days if d.trading_date in set(result.written_days)}):
        store.add_event(
            session, model_id=model_id, model_name=result.model_name, event=RECOMPUTED_EVENT,
            from_status=None, to_status=None, now=now,
            spec=store.EventSpec(spec.actor, _recompute_reason(result, data_version, spec.reason), spec.flow_run_id),
        )


def _recompute_reason(result: PredictionWrite, data_version: str, reason: str | None) -> str:
    assert result.recompute is not None
    first, last = result.recompute
    text = (f"predictions {first}..{last} recomputed: {result.replaced_rows} scores replaced by "
            f"{result.written_rows} (data version {data_version})")
    return f"{text}; {reason}" if reason else text


def _check_models_belong(session: Session, model_name: str, model_ids: set[str]) -> None:
    if not model_ids:
        return
    found = scores_table.versions_of_name(session, model_name, model_ids)
    if missing := sorted(model_ids - found):
        raise ModelNotFoundError(f"model {missing[0]!r} is not a version of {model_name!r}")


def stored_days(session: Session, model_name: str, days: Sequence[date]) -> set[date]:
    """Which of ``days`` already have scores for ``model_name``."""
    if not days:
        return set()
    return set(days_between(session, model_name, min(days), max(days))) & set(days)


def days_between(session: Session, model_name: str, first: date, last: date) -> list[date]:
    """The days in [first, last] with stored scores for ``model_name``."""
    return scores_table.days_between(session, model_name, first, last)


def last_day(session: Session, model_name: str) -> date | None:
    """The last trading day with stored scores for ``model_name``."""
    return scores_table.last_day(session, model_name)


def read(session: Session, model_name: str, first: date | None, last: date | None) -> list[Prediction]:
    """The stored scores of ``model_name`` in [first, last] (the last stored day when both are None),
    by day, best score first."""
    if first is None and last is None:
        latest = last_day(session, model_name)
        if latest is None:
            return []
        first = last = latest
    return [Prediction(**row) for row in scores_table.scores(session, model_name, first, last)]
