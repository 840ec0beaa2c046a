"""Champion/challenger on the same window: the production model re-scored on the candidate's evaluation segment.

Production is scored with its own dataset state (the processors as fitted when it was trained, through
:func:`tasks.core.scoring.score_loaded`, Qlib's ``PredUpdater`` pattern), never with the candidate's
processed dataset; its metrics come from the same code as the candidate's
(:func:`tasks.core.evaluation.prediction_metrics`, IC family and backtest) against the same raw label.
When production cannot be scored the outcome carries the reason and the policy never promotes
automatically (:func:`registry.policy.decide_on_window`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from qlib.data.dataset import DatasetH

from registry import ModelInfo
from tasks.core.evaluation import prediction_metrics, raw_label
from tasks.core.scoring import load_registered_model, score_loaded
from tasks.core.training import Logger, qlib_step
from tasks.core.workflow_config import WorkflowConfig

_log = logging.getLogger(__name__)


@dataclass
class ChampionScore:
    """Production's metrics on the candidate's window, or why it could not be scored."""

    model_id: str
    window: tuple[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    original_metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def scored(self) -> bool:
        return self.error is None


def score_production_on_window(
    production: ModelInfo,
    cfg: WorkflowConfig,
    dataset: DatasetH,
    segment: str = "test",
    logger: Logger | None = None,
) -> ChampionScore:
    """Production's metrics on the candidate's ``segment`` (its predictions on exactly the candidate's days)."""
    started = time.perf_counter()
    with qlib_step(logger):
        label = raw_label(dataset, segment)
        days = label.index.get_level_values("datetime")
    window = (f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}")
    result = ChampionScore(production.model_id, window, original_metrics=dict(production.performance_metrics))
    try:
        loaded = load_registered_model(production.model_id, provider_uri=cfg.provider_uri)
        scores = score_loaded(loaded, window[0], window[1], logger=logger)
        pred = scores.to_frame("score")
        with qlib_step(logger):
            metrics, _, _ = prediction_metrics(pred, label, loaded.model, dataset, cfg, segment, logger or _log)
    # Any failure (artifact purged or corrupted, no saved dataset, features the model cannot predict on,
    # a model library error) means the same thing to the decision: production has no score on this window.
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        result.error = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    else:
        result.metrics = metrics
    result.seconds = time.perf_counter() - started
    return result

