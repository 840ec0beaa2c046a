"""Live metrics of stored predictions: each day scored against the label once the label is in the data.

Day D of a model's predictions is scorable when the ``h`` trading days its label looks ahead (Qlib's own
``get_extended_window_size`` of the model's label expression) are in the calendar. The label is the model's
raw label read with ``D.features``; the IC and Rank IC come from the evaluation's IC code; the signal return
is the mean label of the ``top_k`` best-scored instruments minus the mean label of all scored instruments
(``top_k`` from the model's ``port_analysis_config`` strategy, default 50). The predict flow runs this after
every write, so a run with nothing new to predict still scores the days that became scorable.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from registry import ModelInfo, ModelRegistry, ScoredDay
from registry.errors import ModelNotFoundError
from registry.live import LiveScore, LiveWrite
from registry.settings import Settings
from tasks.core.qlib.training import Logger

DEFAULT_TOP_K = 50  # PortAnaRecord's TopkDropoutStrategy default
DEFAULT_LABEL = "Ref($close, -2)/Ref($close, -1) - 1"  # Alpha158 / Alpha360, when a version recorded none
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelSpec:
    """How a model's predictions are scored: its raw label, the label's look-ahead and the top k."""

    expression: str
    horizon: int
    top_k: int


@dataclass
class LiveOutcome:
    """What one live-metrics step did for a name."""

    model_name: str
    written_days: list[date] = field(default_factory=list)
    waiting_days: int = 0  # stored days whose label is not in the data yet

    @property
    def message(self) -> str:
        if not self.written_days:
            return f"{self.model_name}: no newly scorable day ({self.waiting_days} waiting for their label)"
        return (f"{self.model_name}: live metrics for {len(self.written_days)} day(s) "
                f"{self.written_days[0]}..{self.written_days[-1]} ({self.waiting_days} waiting for their label)")


def label_horizon(expression: str) -> int:
    """Trading days the label looks ahead (Qlib initialised): the right side of its extended window."""
    from qlib.data.data import ExpressionD

    return int(ExpressionD.get_expression_instance(expression).get_extended_window_size()[1])


def top_k_of(info: ModelInfo) -> int:
    """The top k of the model's backtest strategy, from the ``task`` its recorder saved (default 50)."""
    config = recorded_port_analysis(info) or {}
    return int(((config.get("strategy") or {}).get("kwargs") or {}).get("topk", DEFAULT_TOP_K))


def recorded_port_analysis(info: ModelInfo) -> dict[str, Any] | None:
    """The model's ``port_analysis_config`` (its PortAnaRecord's ``config``) from the ``task`` its recorder saved."""
    found = _recorded_port_analysis(info.qlib_recorder_id, info.experiment_name)
    return copy.deepcopy(found) if found is not None else None


@lru_cache(maxsize=256)
def _recorded_port_analysis(recorder_id: str | None, experiment_name: str | None) -> dict[str, Any] | None:
    if not recorder_id or not experiment_name:
        return None
    from qlib.workflow import R

    try:
        task = R.get_recorder(recorder_id=recorder_id, experiment_name=experiment_name).load_object("task")
    except Exception:  # no recorder or no saved task: the backtest ran with the default strategy
        return None
    records = task.get("record") or []
    for record in [records] if isinstance(records, dict) else records:
        if isinstance(record, dict) and "PortAnaRecord" in str(record.get("class", "")):
            config = (record.get("kwargs") or {}).get("config")
            return config if isinstance(config, dict) else None
    return None


def label_spec(info: ModelInfo) -> LabelSpec:
    """The model's label expression, its look-ahead and its top k (Qlib initialised)."""
    expression = (info.dataset_info.label if info.dataset_info else None) or DEFAULT_LABEL
    return LabelSpec(expression, label_horizon(expression), top_k_of(info))


def last_scorable_day(horizon: int) -> date | None:
    """The last calendar day whose label ``horizon`` days ahead is in the data."""
    from qlib.data import D

    calendar = D.calendar(freq="day")
    return pd.Timestamp(calendar[-1 - horizon]).date() if len(calendar) > horizon else None


def read_labels(expression: str, instruments: Sequence[str], first: date, last: date) -> pd.Series:
    """The raw label of ``instruments`` on [first, last], indexed (datetime, instrument) as predictions are."""
    from qlib.data import D

    frame = D.features(sorted(set(instruments)), [expression], start_time=first, end_time=last, freq="day")
    label = frame.iloc[:, 0].swaplevel().sort_index()
    label.index = label.index.set_names(["datetime", "instrument"])
    return label


def day_scores(days: Sequence[ScoredDay]) -> pd.Series:
    """Stored scores as one series indexed (datetime, instrument)."""
    pairs = [(pd.Timestamp(day.trading_date), inst, score) for day in days for inst, score in day.scores]
    index = pd.MultiIndex.from_arrays([[p[0] for p in pairs], [p[1] for p in pairs]], names=["datetime", "instrument"])
    return pd.Series([p[2] for p in pairs], index=index, dtype=float)


def live_metrics(days: Sequence[ScoredDay], label: pd.Series, top_k: int) -> list[LiveScore]:
    """Each day's IC, Rank IC, instrument count and signal return of ``days`` (one model) against ``label``."""
    from tasks.core.qlib.evaluation import daily_ics

    pred = day_scores(days)
    both = pd.DataFrame({"score": pred, "label": label.reindex(pred.index)}).dropna()
    ic, rank_ic = daily_ics(both["score"], both["label"]) if len(both) else (pd.Series(), pd.Series())
    by_day = {pd.Timestamp(day): part for day, part in both.groupby(level="datetime")}
    scores: list[LiveScore] = []
    for day in days:
        stamp = pd.Timestamp(day.trading_date)
        part = by_day.get(stamp)
        if part is None:  # no scored instrument has a label that day: stored as such, so it is not retried
            scores.append(LiveScore(model_id=day.model_id, trading_date=day.trading_date, ic=None, rank_ic=None,
                                    instruments=0, signal_return=None, top_k=top_k))
            continue
        top = part.nlargest(top_k, "score")
        scores.append(LiveScore(
            model_id=day.model_id, trading_date=day.trading_date, ic=ic.get(stamp), rank_ic=rank_ic.get(stamp),
            instruments=len(part), signal_return=float(top["label"].mean() - part["label"].mean()), top_k=top_k,
        ))
    return scores


def score_days(registry: ModelRegistry, days: Sequence[ScoredDay]) -> tuple[list[LiveScore], int]:
    """Live metrics of the scorable ``days`` (any models; Qlib initialised) and how many are still waiting."""
    scores: list[LiveScore] = []
    waiting = 0
    for model_id in sorted({day.model_id for day in days}):
        spec = _spec_of(registry, model_id)
        cutoff = last_scorable_day(spec.horizon)
        own = [day for day in days if day.model_id == model_id]
        ready = [day for day in own if cutoff is not None and day.trading_date <= cutoff]
        waiting += len(own) - len(ready)
        if not ready:
            continue
        instruments = [inst for day in ready for inst, _ in day.scores]
        if instruments:
            label = read_labels(spec.expression, instruments, ready[0].trading_date, ready[-1].trading_date)
            scores.extend(live_metrics(ready, label, spec.top_k))
        else:
            scores.extend(live_metrics(ready, pd.Series(dtype=float), spec.top_k))
    return sorted(scores, key=lambda s: s.trading_date), waiting


def _spec_of(registry: ModelRegistry, model_id: str) -> LabelSpec:
    """The model's label spec; a deleted model's stored days are scored with the default label and top k."""
    try:
        return label_spec(registry.get_model_info(model_id))
    except ModelNotFoundError:
        return LabelSpec(DEFAULT_LABEL, label_horizon(DEFAULT_LABEL), DEFAULT_TOP_K)


def unscored_days(registry: ModelRegistry, model_name: str) -> list[ScoredDay]:
    """The name's stored prediction days that have no live metrics yet, with their scores."""
    stored = registry.last_prediction_date(model_name)
    if stored is None:
        return []
    scored = {day.trading_date for day in registry.live_metrics(model_name)}
    by_day: dict[tuple[date, str], list[tuple[str, float]]] = {}
    first_unscored = _first_missing(registry, model_name, scored, stored)
    if first_unscored is None:
        return []
    for row in registry.predictions(model_name, (first_unscored, stored)):
        if row.trading_date not in scored:
            by_day.setdefault((row.trading_date, row.model_id), []).append((row.instrument, row.score))
    return [ScoredDay(model_id, day, pairs) for (day, model_id), pairs in sorted(by_day.items())]


def _first_missing(registry: ModelRegistry, model_name: str, scored: set[date], last: date) -> date | None:
    days = registry.prediction_days(model_name, date(1900, 1, 1), last)
    return next((day for day in days if day not in scored), None)


def update_live_metrics(
    registry: ModelRegistry, model_name: str, *, data_version: str, flow_run_id: str | None = None,
    logger: Logger | None = None,
) -> LiveOutcome:
    """Score and store the name's stored days that became scorable (Qlib initialised on the data)."""
    from tasks.core.qlib.session import QLIB_LOCK

    pending = unscored_days(registry, model_name)
    with QLIB_LOCK:
        scores, waiting = score_days(registry, pending)
    written: LiveWrite = registry.write_live_metrics(model_name, scores, data_version=data_version,
                                                     flow_run_id=flow_run_id)
    outcome = LiveOutcome(model_name, written_days=written.written_days, waiting_days=waiting)
    (logger or _log).info(outcome.message)
    return outcome


def update_name(
    model_name: str, *, settings: Settings, provider_uri: str | Path | None = None, region: str = "cn",
    registry: ModelRegistry | None = None, flow_run_id: str | None = None, logger: Logger | None = None,
) -> LiveOutcome:
    """The predict flow's live step for one name: Qlib on the data directory, then :func:`update_live_metrics`."""
    from tasks.core.data.version import data_version
    from tasks.core.lifecycle import open_registry
    from tasks.core.qlib.scoring import resolve_provider_uri
    from tasks.core.qlib.session import init_qlib

    registry = registry or open_registry(settings)
    provider = resolve_provider_uri(provider_uri, settings)
    init_qlib(provider, region=region, settings=settings)
    return update_live_metrics(registry, model_name, data_version=str(data_version(provider)),
                               flow_run_id=flow_run_id, logger=logger)
