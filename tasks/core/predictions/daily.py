"""Daily predictions of a name's production model: which days, which model per day, score, store.

The rule: the signal for NAME on DATE comes from the model that was production for NAME at DATE's market
close in the exchange's time zone (15:00 Asia/Shanghai for region ``cn``), read from the registry's
history. A day before the name's first promotion (a first run over past data) takes the first model
ever promoted, so that a recompute of the same days picks the same model again.

A run predicts the trading days after the name's last stored prediction up to the data calendar's last
day (or the days asked), scores them with the shared scoring function, writes them all in one
transaction, then extends each scoring model's recorder ``pred.pkl`` as Qlib's ``PredUpdater`` does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from registry import ModelRegistry, ModelStatus, PredictionWrite, ScoredDay
from registry.errors import ModelRegistryError
from registry.live import LiveScore
from registry.settings import Settings
from tasks.core.data.version import data_version
from tasks.core.predictions.pending import NOTHING_TO_PREDICT
from tasks.core.qlib.scoring import (
    LoadedModel,
    OutsideCalendarError,
    ScoringError,
    load_registered_model,
    resolve_provider_uri,
    score_loaded,
    trading_days,
)
from tasks.core.qlib.training import Logger
from tasks.core.timing import timed

_log = logging.getLogger(__name__)
# Where each region's exchange closes; the rule above reads production at this moment of each day.
MARKET_CLOSE: dict[str, tuple[str, clock_time]] = {
    "cn": ("Asia/Shanghai", clock_time(15, 0)),
    "us": ("America/New_York", clock_time(16, 0)),
}


class NoProductionModelError(ModelRegistryError):
    """The name has no production model to predict with."""


@dataclass
class DayReport:
    """One predicted day: the model that scored it, how many scores, how many universe members had none."""

    trading_date: date
    model_id: str
    scored: int
    missing: int


@dataclass
class PredictOutcome:
    """What a predict run did for one name (``days`` empty when there was nothing to predict)."""

    model_name: str
    message: str
    days: list[DayReport] = field(default_factory=list)
    written_days: list[date] = field(default_factory=list)
    skipped_days: list[date] = field(default_factory=list)
    replaced_rows: int = 0
    data_version: str = ""
    top: list[tuple[str, float]] = field(default_factory=list)  # the last day's best scores
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def predicted(self) -> bool:
        return bool(self.days)


def market_close(day: date, region: str = "cn") -> datetime:
    """The exchange's close on ``day`` as an aware datetime."""
    zone, closes = MARKET_CLOSE.get(region, MARKET_CLOSE["cn"])
    return datetime.combine(day, closes, tzinfo=ZoneInfo(zone))


def model_for_day(registry: ModelRegistry, model_name: str, region: str = "cn") -> Callable[[date], str]:
    """The rule of the module docstring as a function of the day."""
    first_promoted = next(
        (e.model_id for e in registry.history(model_name) if e.to_status == ModelStatus.PRODUCTION), None
    )

    def pick(day: date) -> str:
        chosen = registry.production_at(model_name, market_close(day, region)) or first_promoted
        if chosen is None:
            raise NoProductionModelError(f"no production model for {model_name!r}: promote one first")
        return chosen

    return pick


def days_to_predict(
    registry: ModelRegistry, model_name: str, start: date | None, end: date | None, recompute: bool
) -> list[pd.Timestamp]:
    """The trading days this run scores (Qlib initialised on the data directory).

    Incremental by default: from the day after the name's last stored prediction (the calendar's last day
    on a first run) to the calendar's last day. Days already stored are left out unless ``recompute``.
    """
    from qlib.data import D

    calendar = D.calendar(freq="day")
    if recompute:
        if start is None or end is None:
            raise ScoringError("--recompute needs both --from and --to")
        return list(trading_days(start, end))
    if start is None:
        last_stored = registry.last_prediction_date(model_name)
        first = pd.Timestamp(last_stored) + pd.Timedelta(days=1) if last_stored else calendar[-1]
    else:
        first = pd.Timestamp(start)
    last = pd.Timestamp(end) if end is not None else calendar[-1]
    if start is not None or end is not None:  # an explicit range must meet the calendar
        if first > last:
            raise OutsideCalendarError(f"--from {first.date()} is after --to {last.date()}")
        if first > calendar[-1] or last < calendar[0]:
            raise OutsideCalendarError(
                f"{first.date()}..{last.date()} is outside the data calendar ({calendar[0].date()}..{calendar[-1].date()})"
            )
    last = min(last, calendar[-1])
    if first > last:
        return []
    days = list(trading_days(first, last))
    stored = set(registry.prediction_days(model_name, days[0].date(), days[-1].date()))
    return [day for day in days if day.date() not in stored]


def traded_instruments(loaded: LoadedModel, days: list[pd.Timestamp]) -> dict[pd.Timestamp, tuple[int, set[str]]]:
    """Per day: how many instruments the model's universe has, and which of them have a close price.

    An instrument without a close that day (suspended, or its data missing) gets no stored score.
    """
    from qlib.data import D

    market = getattr(loaded.dataset.handler, "instruments", None)
    if market is None:
        return {}
    universe = D.instruments(market) if isinstance(market, str) else market
    closes = D.features(universe, ["$close"], start_time=days[0], end_time=days[-1], freq="day")
    closes = closes[closes["$close"].notna()]
    traded: dict[pd.Timestamp, set[str]] = {day: set() for day in days}
    for instrument, day in closes.index:
        traded.setdefault(pd.Timestamp(day), set()).add(str(instrument))
    return {
        day: (len(D.list_instruments(universe, start_time=day, end_time=day, as_list=True)), traded.get(day, set()))
        for day in days
    }


def extend_recorder_predictions(loaded: LoadedModel, scores: pd.Series) -> None:
    """Add ``scores`` to the model's recorder ``pred.pkl`` the way Qlib's PredUpdater combines them."""
    from qlib.workflow.online.update import _replace_range

    try:
        old = loaded.recorder.load_object("pred.pkl")
    except Exception:  # a recorder that never predicted (no evaluation): start its pred.pkl here
        old = scores.iloc[:0].to_frame("score")
    loaded.recorder.save_objects(**{"pred.pkl": _replace_range(old, scores.to_frame("score"))})


@dataclass
class ScoredBatch:
    """A run's scores before they are stored: per model its loaded model and scores, per day its report and
    the scores kept (instruments traded that day, finite scores)."""

    scored: list[tuple[LoadedModel, pd.Series]] = field(default_factory=list)
    reports: list[DayReport] = field(default_factory=list)
    days: list[ScoredDay] = field(default_factory=list)


def predict_name(
    model_name: str,
    *,
    start: date | None = None,
    end: date | None = None,
    recompute: bool = False,
    settings: Settings,
    registry: ModelRegistry | None = None,
    provider_uri: str | Path | None = None,
    region: str = "cn",
    top_k: int = 20,
    flow_run_id: str | None = None,
    actor: str = "predict-flow",
    logger: Logger | None = None,
) -> PredictOutcome:
    """Predict ``model_name``'s new trading days (or recompute [start, end]) and store them (module docstring)."""
    from tasks.core.lifecycle import open_registry
    from tasks.core.qlib.session import QLIB_LOCK, init_qlib

    log = logger or _log
    registry = registry or open_registry(settings)
    production = registry.get_production_model(model_name)
    if production is None:
        raise NoProductionModelError(f"no production model for {model_name!r}: promote one first")
    provider = resolve_provider_uri(provider_uri, settings)
    timings: dict[str, float] = {}
    with timed() as clock:
        init_qlib(provider, region=region, settings=settings)
    timings["qlib_init"] = clock.seconds
    with QLIB_LOCK:
        days = days_to_predict(registry, model_name, start, end, recompute)
    if not days:
        return _nothing_to_predict(registry, model_name, timings, log)
    version = str(data_version(provider))
    batch = score_days(registry, model_name, days, settings=settings, provider=provider, region=region,
                       timings=timings, logger=logger)
    live = _recomputed_live_metrics(registry, batch, recompute, timings)
    with timed() as clock:
        window = (days[0].date(), days[-1].date()) if recompute else None
        written = registry.write_predictions(
            model_name, batch.days, data_version=version, recompute=window, actor=actor, flow_run_id=flow_run_id,
            reason="qmp predict --recompute" if recompute else None, live=live,
        )
    timings["store"] = clock.seconds
    with timed() as clock, QLIB_LOCK:
        for loaded, scores in batch.scored:
            extend_recorder_predictions(loaded, scores)
    timings["recorder_pred"] = clock.seconds
    message = _written_message(model_name, days, written, batch.reports, recompute, production.model_id)
    log.info(message)
    top = sorted(batch.days[-1].scores, key=lambda item: item[1], reverse=True)[:top_k]
    return PredictOutcome(
        model_name, message, days=batch.reports, written_days=written.written_days, skipped_days=written.skipped_days,
        replaced_rows=written.replaced_rows, data_version=version, top=top, timings=timings,
    )


def _recomputed_live_metrics(
    registry: ModelRegistry, batch: ScoredBatch, recompute: bool, timings: dict[str, float]
) -> list[LiveScore]:
    """A recompute's new live metrics, written with its scores (new days get theirs in the live step)."""
    from tasks.core.predictions.live import score_days as score_live_days
    from tasks.core.qlib.session import QLIB_LOCK

    if not recompute:
        return []
    with timed() as clock, QLIB_LOCK:
        live, _ = score_live_days(registry, batch.days)
    timings["live_recompute"] = clock.seconds
    return live


def _nothing_to_predict(
    registry: ModelRegistry, model_name: str, timings: dict[str, float], log: Logger
) -> PredictOutcome:
    last = registry.last_prediction_date(model_name)
    message = f"{model_name}: {NOTHING_TO_PREDICT} (last stored prediction {last}, data calendar has no later day)"
    log.info(message)
    return PredictOutcome(model_name, message, timings=timings)


def score_days(
    registry: ModelRegistry, model_name: str, days: list[pd.Timestamp], *, settings: Settings, provider: Path,
    region: str, timings: dict[str, float], logger: Logger | None,
) -> ScoredBatch:
    """Score ``days``, each with the model the module docstring's rule picks (their load and scoring times
    added to ``timings``)."""
    from tasks.core.qlib.session import QLIB_LOCK

    pick = model_for_day(registry, model_name, region)
    plan = [(pick(day.date()), day) for day in days]
    batch = ScoredBatch()
    for model_id, group in groupby(plan, key=lambda item: item[0]):
        group_days = [day for _, day in group]
        loaded = load_registered_model(model_id, registry=registry, settings=settings, provider_uri=provider,
                                       region=region)
        scores = score_loaded(loaded, group_days[0], group_days[-1], logger=logger)
        for key, value in loaded.timings.items():
            timings[key] = timings.get(key, 0.0) + value
        batch.scored.append((loaded, scores))
        with QLIB_LOCK:
            universe = traded_instruments(loaded, group_days)
        _keep_traded(batch, model_name, model_id, scores, group_days, universe, logger or _log)
    return batch


def _keep_traded(
    batch: ScoredBatch, model_name: str, model_id: str, scores: pd.Series, days: list[pd.Timestamp],
    universe: dict[pd.Timestamp, tuple[int, set[str]]], log: Logger,
) -> None:
    """Add each day's finite scores of instruments traded that day to ``batch``, with its report."""
    by_day = {day: part.droplevel("datetime") for day, part in scores.groupby(level="datetime")}
    for day in days:
        part = by_day.get(day, pd.Series(dtype=float))
        members, traded = universe.get(day, (None, None))
        finite = [(str(inst), float(v)) for inst, v in part.items()
                  if math.isfinite(v) and (traded is None or str(inst) in traded)]
        missing = max(0, members - len(finite)) if members is not None else 0
        batch.reports.append(DayReport(day.date(), model_id, len(finite), missing))
        batch.days.append(ScoredDay(model_id, day.date(), finite))
        if missing:
            log.warning("%s on %s: %d of %d instruments have no data that day; predicted the %d that have",
                        model_name, day.date(), missing, members, len(finite))


def _written_message(
    model_name: str, days: list[pd.Timestamp], written: PredictionWrite, reports: list[DayReport], recompute: bool,
    production_now: str,
) -> str:
    missing_total = sum(r.missing for r in reports)
    scorers = sorted({r.model_id for r in reports})
    return (
        f"{model_name}: {len(written.written_days)} day(s) written "
        f"({days[0].date()}..{days[-1].date()}, {written.written_rows} scores"
        + (f", {written.replaced_rows} replaced" if recompute else "")
        + (f", {len(written.skipped_days)} day(s) already stored left as they were" if written.skipped_days else "")
        + (f", {missing_total} instrument-days without data" if missing_total else "")
        + (f", live metrics of {len(written.live_written_days)} day(s) recomputed" if recompute else "")
        + f") by {', '.join(scorers)}"
        + ("" if scorers == [production_now] else
           f" (production now: {production_now}; a day takes the model production at its close, a day before the "
           "name's first promotion the first model promoted)")
    )
