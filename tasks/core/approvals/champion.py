"""Champion/challenger on the same window: the production model re-scored on the candidate's evaluation segment.

Production is scored with its own dataset state (the processors as fitted when it was trained, through
:func:`tasks.core.qlib.scoring.score_loaded`, Qlib's ``PredUpdater`` pattern), never with the candidate's
processed dataset; its metrics come from the same code as the candidate's
(:func:`tasks.core.qlib.evaluation.prediction_metrics`, IC family and backtest) against the same raw label.
When production cannot be scored the outcome carries the reason and the policy never promotes
automatically (:func:`registry.policy.decide_on_window`). The retrain flow scores production on the
dataset it has just built; the stale-approval check, days later, on the candidate's evaluation rebuilt
from its recorder (:func:`score_production_for_waiting_candidate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd
from qlib.data.dataset import DatasetH

from registry import ModelInfo, ModelRegistry
from registry.approvals import EvaluatedOn
from registry.settings import Settings
from tasks.core.qlib.evaluation import prediction_metrics, raw_label
from tasks.core.qlib.scoring import load_registered_model, resolve_provider_uri, score_on_shared_features
from tasks.core.qlib.session import QLIB_LOCK
from tasks.core.qlib.training import Logger, qlib_step
from tasks.core.qlib.workflow_config import WorkflowConfig, load_workflow_config
from tasks.core.timing import timed

LABEL_OBJECT = "label.pkl"  # the raw label the evaluation saves in the recorder (as SignalRecord does)
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
    feature_seconds: float = 0.0  # of `seconds`: production's features (its processors on shared raw features)
    shared_features: bool = False  # production read the candidate's raw features (no second feature load)

    @property
    def scored(self) -> bool:
        return self.error is None

    @property
    def window_text(self) -> str:
        """``first..last`` trading day (or the segment's name when its days could not be read)."""
        return "..".join(part for part in self.window if part)


def score_production_on_window(
    production: ModelInfo,
    cfg: WorkflowConfig,
    dataset: DatasetH,
    segment: str = "test",
    logger: Logger | None = None,
    *,
    label: pd.DataFrame | None = None,
    settings: Settings,
    registry: ModelRegistry | None = None,
) -> ChampionScore:
    """Production's metrics on the candidate's ``segment`` (its predictions on exactly the candidate's days).

    ``label`` is the candidate's raw label on the segment when it is already at hand (the stale-approval
    check reads the one the candidate's evaluation saved); otherwise it is taken from ``dataset``.
    ``registry``: where production is loaded from (default: the one ``settings`` name).
    """
    with timed() as clock:
        with qlib_step(logger):
            label = raw_label(dataset, segment) if label is None else label
            days = label.index.get_level_values("datetime")
        window = (f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}")
        result = ChampionScore(production.model_id, window, original_metrics=dict(production.performance_metrics))
        try:
            loaded = load_registered_model(production.model_id, registry=registry, settings=settings,
                                           qlib_init=cfg.qlib_init)
            scores, result.shared_features = score_on_shared_features(loaded, dataset, window[0], window[1],
                                                                      logger=logger)
            result.feature_seconds = loaded.timings.get("features", 0.0)
            pred = scores.to_frame("score")
            with qlib_step(logger):
                metrics, _, _ = prediction_metrics(pred, label, loaded.model, dataset, cfg, segment, logger or _log)
        # Any failure (artifact purged or corrupted, no saved dataset, features the model cannot predict on,
        # a model library error) means the same thing to the decision: production has no score on this window.
        except Exception as exc:
            result.error = _one_line(exc)
        else:
            result.metrics = metrics
    result.seconds = clock.seconds
    return result


def score_production_for_waiting_candidate(
    production: ModelInfo,
    candidate: ModelInfo,
    evaluated_on: EvaluatedOn | None,
    *,
    settings: Settings,
    registry: ModelRegistry | None = None,
    logger: Logger | None = None,
) -> ChampionScore:
    """Production's metrics on the window a candidate awaiting approval was evaluated on (the stale check).

    The candidate's evaluation is rebuilt from its Qlib recorder: the raw label its evaluation saved
    (``label.pkl``: the same days and the same label), its workflow ``task`` (the backtest settings) and
    its saved dataset; then :func:`score_production_on_window` scores production there. ``evaluated_on``
    (recorded with the request) names the segment and the data directory; a request recorded without it
    is taken as the ``test`` segment on the configured data directory (QMP_PROVIDER_URI).
    """
    where = evaluated_on or EvaluatedOn()
    with timed() as clock:
        try:
            loaded = load_registered_model(candidate.model_id, registry=registry, settings=settings,
                                           provider_uri=where.provider_uri)
            with QLIB_LOCK:
                label = loaded.recorder.load_object(LABEL_OBJECT)
                task = loaded.recorder.load_object("task")
            provider_uri = where.provider_uri or str(resolve_provider_uri(None, settings))
            cfg = load_workflow_config({"qlib_init": {"provider_uri": provider_uri}, "task": task},
                                       provider_uri=provider_uri)
        except Exception as exc:  # no recorder, no saved label or task: the candidate's window cannot be rebuilt
            span = _segment_span(candidate, where.segment)
            error = f"the evaluation of candidate {candidate.model_id} cannot be rebuilt: {_one_line(exc)}"
            return ChampionScore(production.model_id, span, original_metrics=dict(production.performance_metrics),
                                 error=error, seconds=clock.seconds)
    return score_production_on_window(production, cfg, loaded.dataset, where.segment, logger, label=label,
                                      registry=registry, settings=settings)


def _segment_span(info: ModelInfo, segment: str) -> tuple[str, str]:
    """The registered bounds of ``segment`` (what a window is called when its days cannot be read)."""
    span = ((info.dataset_info.model_extra or {}).get("segments") or {}).get(segment) if info.dataset_info else None
    return (str(span[0])[:10], str(span[1])[:10]) if span and len(span) == 2 else (f"its {segment!r} segment", "")


def _one_line(exc: BaseException) -> str:
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
