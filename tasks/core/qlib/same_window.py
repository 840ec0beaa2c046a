"""Two registered models scored on the same days, days neither of them saw: `qmp models compare A B --same-window`.

The days are the newest ``days`` trading days after both models' train and valid segments end plus their
labels' look-ahead, whose label is in the data; by default as many as the shorter of the two test segments.
Each model is scored with its own dataset state (the predict flow's scoring function) and measured against its
own raw label by the evaluation's signal metrics (IC, ICIR, Rank IC, Rank ICIR; no backtest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from registry import ModelInfo, ModelRegistry
from registry.settings import Settings
from tasks.core.qlib.scoring import ScoringError, load_registered_model, resolve_provider_uri, score_loaded

SIGNAL_METRICS = ("ic_mean", "icir", "rank_ic", "rank_icir")
DEFAULT_DAYS = 20  # when neither model recorded its test segment's length


@dataclass
class SameWindowComparison:
    """Both models' signal metrics on the same unseen days."""

    first: str
    second: str
    window: tuple[date, date]
    days: int
    metrics: dict[str, dict[str, float]]  # model id -> metric -> value
    note: str


def comparison_days(first: ModelInfo, second: ModelInfo, days: int | None) -> pd.DatetimeIndex:
    """The newest ``days`` scorable trading days after both models' training and validation (Qlib initialised)."""
    from qlib.data import D

    from tasks.core.approvals.champion import production_seen_until
    from tasks.core.predictions.live import label_spec, last_scorable_day

    seen = [s for s in (production_seen_until(first), production_seen_until(second)) if s is not None]
    cutoff = last_scorable_day(max(label_spec(first).horizon, label_spec(second).horizon))
    calendar = pd.DatetimeIndex(D.calendar(freq="day"))
    after = calendar[calendar > max(seen)] if seen else calendar
    usable = after[after <= pd.Timestamp(cutoff)] if cutoff is not None else after[:0]
    wanted = days or _shorter_test_segment(first, second)
    if wanted < 1:
        raise ScoringError(f"--days must be at least 1, got {wanted}")
    if usable.empty:
        raise ScoringError(f"no trading day with a label after both models' training and validation "
                           f"(the later ends {max(seen).date() if seen else '?'}, with the label's look-ahead)")
    return usable[-wanted:]


def _shorter_test_segment(first: ModelInfo, second: ModelInfo) -> int:
    lengths = [int(m.performance_metrics["test_days"]) for m in (first, second) if "test_days" in m.performance_metrics]
    return min(lengths) if lengths else DEFAULT_DAYS


def compare_on_same_window(
    first_id: str, second_id: str, *, settings: Settings, registry: ModelRegistry,
    days: int | None = None, provider_uri: str | Path | None = None,
) -> SameWindowComparison:
    """Score both models on :func:`comparison_days` and measure them with the evaluation's signal metrics."""
    from tasks.core.predictions.live import label_spec, read_labels
    from tasks.core.qlib.evaluation import signal_metrics
    from tasks.core.qlib.session import QLIB_LOCK, init_qlib

    infos = [registry.get_model_info(first_id), registry.get_model_info(second_id)]
    init_qlib(resolve_provider_uri(provider_uri, settings), settings=settings)
    with QLIB_LOCK:
        window = comparison_days(infos[0], infos[1], days)
    metrics: dict[str, dict[str, float]] = {}
    for info in infos:
        loaded = load_registered_model(info.model_id, registry=registry, settings=settings, provider_uri=provider_uri)
        scores = score_loaded(loaded, window[0], window[-1])
        with QLIB_LOCK:
            label = read_labels(label_spec(info).expression, list(scores.index.get_level_values("instrument")),
                                window[0].date(), window[-1].date())
        values, _ = signal_metrics(scores.to_frame("score"), label.reindex(scores.index).to_frame("label"))
        metrics[info.model_id] = {name: values[name] for name in SIGNAL_METRICS}
    note = (f"both scored on the {len(window)} newest trading days after both models' train and valid segments "
            f"(plus the label's look-ahead): {window[0].date()}..{window[-1].date()}")
    return SameWindowComparison(first_id, second_id, (window[0].date(), window[-1].date()), len(window), metrics, note)
