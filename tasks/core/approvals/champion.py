"""Champion/challenger on the same window: the production model re-scored on the candidate's evaluation segment.

Production is judged only on days it never saw: the candidate's days after the end of production's own train
and valid segments plus its label's look-ahead. When the candidate's window overlaps them, both models are
scored on the days after (when there are at least ``min_comparison_days``) and the comparison says so;
otherwise the comparison is *not comparable*, which the policy treats as an unscored production model.

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

MIN_COMPARISON_DAYS = 20  # unseen days below which production and the candidate are "not comparable"
UNSEEN_SEGMENT = "unseen days"
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
    comparable: bool = True  # False: production saw too much of the window (``error`` says how much)
    note: str | None = None  # how the window was restricted to the days production never saw
    candidate_metrics: dict[str, float] | None = None  # the candidate on the same restricted days

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
    candidate_pred: pd.DataFrame | None = None,
    min_comparison_days: int = MIN_COMPARISON_DAYS,
) -> ChampionScore:
    """Production's metrics on the candidate's ``segment`` (its predictions on exactly the candidate's days),
    only on the days production never saw (:func:`unseen_part`; the candidate re-scored there from
    ``candidate_pred``, its predictions on the segment).

    ``label`` is the candidate's raw label on the segment when it is already at hand (the stale-approval
    check reads the one the candidate's evaluation saved); otherwise it is taken from ``dataset``.
    ``registry``: where production is loaded from (default: the one ``settings`` name).
    """
    with timed() as clock:
        with qlib_step(logger):
            label = raw_label(dataset, segment) if label is None else label
            part = unseen_part(production, label, candidate_pred, min_comparison_days)
        result = ChampionScore(production.model_id, part.window, original_metrics=dict(production.performance_metrics),
                               note=part.note, comparable=part.not_comparable is None)
        if part.not_comparable is not None:
            result.error = part.not_comparable
        else:
            _score_on(result, production, cfg, dataset, part, segment, logger, settings=settings, registry=registry)
    result.seconds = clock.seconds
    return result


def _score_on(
    result: ChampionScore, production: ModelInfo, cfg: WorkflowConfig, dataset: DatasetH, part: UnseenPart,
    segment: str, logger: Logger | None, *, settings: Settings, registry: ModelRegistry | None,
) -> None:
    """Fill ``result`` with production's metrics on ``part`` (and the candidate's when ``part`` is a restriction)."""
    try:
        loaded = load_registered_model(production.model_id, registry=registry, settings=settings,
                                       qlib_init=cfg.qlib_init)
        scores, result.shared_features = score_on_shared_features(loaded, dataset, part.window[0], part.window[1],
                                                                  logger=logger)
        result.feature_seconds = loaded.timings.get("features", 0.0)
        pred = scores.to_frame("score")
        # On a part of the segment the backtest spans the part's days (any segment name but "test").
        used_segment = UNSEEN_SEGMENT if part.candidate_pred is not None else segment
        with qlib_step(logger):
            metrics, _, _ = prediction_metrics(pred, part.label, loaded.model, dataset, cfg, used_segment,
                                               logger or _log)
            if part.candidate_pred is not None:
                result.candidate_metrics, _, _ = prediction_metrics(
                    part.candidate_pred, part.label, loaded.model, dataset, cfg, used_segment, logger or _log)
    # Any failure (artifact purged or corrupted, no saved dataset, features the model cannot predict on,
    # a model library error) means the same thing to the decision: production has no score on this window.
    except Exception as exc:
        result.error = _one_line(exc)
    else:
        result.metrics = metrics


@dataclass
class UnseenPart:
    """The candidate's evaluation days production can be judged on, or why it cannot be."""

    label: pd.DataFrame
    window: tuple[str, str]
    candidate_pred: pd.DataFrame | None = None  # set when the comparison is restricted to part of the window
    note: str | None = None
    not_comparable: str | None = None


def production_seen_until(production: ModelInfo) -> pd.Timestamp | None:
    """The last day whose label production's training or validation read: the end of its train and valid
    segments plus its label's look-ahead (Qlib initialised); None when it registered no segments."""
    from qlib.data import D

    from tasks.core.predictions.live import label_spec

    segments = ((production.dataset_info.model_extra or {}).get("segments") or {}) if production.dataset_info else {}
    ends = [pd.Timestamp(str(span[1])[:10]) for name, span in segments.items()
            if name in ("train", "valid") and span and len(span) == 2]
    if not ends:
        return None
    calendar = D.calendar(freq="day")
    position = int(calendar.searchsorted(max(ends), side="right")) - 1 + label_spec(production).horizon
    return pd.Timestamp(calendar[min(max(position, 0), len(calendar) - 1)])


def unseen_part(
    production: ModelInfo, label: pd.DataFrame, candidate_pred: pd.DataFrame | None, min_days: int
) -> UnseenPart:
    """The days of ``label`` after :func:`production_seen_until`; the whole window when it is all unseen."""
    days = pd.DatetimeIndex(sorted(set(label.index.get_level_values("datetime"))))
    whole = (f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}")
    seen_until = production_seen_until(production)
    if seen_until is None or days.min() > seen_until:
        return UnseenPart(label, whole)
    unseen = days[days > seen_until]
    overlap = (f"production {production.model_id} was trained and validated on days up to {seen_until.date()} "
               f"(with its label's look-ahead), inside the candidate's window {whole[0]}..{whole[1]}")
    if len(unseen) < min_days:
        return UnseenPart(label, whole, not_comparable=(f"not comparable: {overlap}; {len(unseen)} day(s) after it, "
                                                        f"fewer than min_comparison_days {min_days}"))
    if candidate_pred is None:
        return UnseenPart(label, whole, not_comparable=f"not comparable: {overlap}; the candidate's predictions "
                                                       "are not at hand to score it on the days after it")
    keep = label.index.get_level_values("datetime") > seen_until
    kept_pred = candidate_pred[candidate_pred.index.get_level_values("datetime") > seen_until]
    window = (f"{unseen.min():%Y-%m-%d}", f"{unseen.max():%Y-%m-%d}")
    note = (f"{overlap}: both models compared on the {len(unseen)} days after it ({window[0]}..{window[1]}), "
            f"not on the whole window")
    return UnseenPart(label[keep], window, candidate_pred=kept_pred, note=note)


def recorded_predictions(candidate: ModelInfo) -> pd.DataFrame | None:
    """The predictions the candidate's evaluation saved in its recorder (``pred.pkl``), if any."""
    if not candidate.qlib_recorder_id or not candidate.experiment_name:
        return None
    from qlib.workflow import R

    try:
        with QLIB_LOCK:
            pred = R.get_recorder(recorder_id=candidate.qlib_recorder_id,
                                  experiment_name=candidate.experiment_name).load_object("pred.pkl")
    except Exception:  # no recorder or no saved predictions: the comparison cannot be restricted
        return None
    return pred if isinstance(pred, pd.DataFrame) else pred.to_frame("score")


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
            candidate_pred = recorded_predictions(candidate)
            provider_uri = where.provider_uri or str(resolve_provider_uri(None, settings))
            cfg = load_workflow_config({"qlib_init": {"provider_uri": provider_uri}, "task": task},
                                       provider_uri=provider_uri)
        except Exception as exc:  # no recorder, no saved label or task: the candidate's window cannot be rebuilt
            span = _segment_span(candidate, where.segment)
            error = f"the evaluation of candidate {candidate.model_id} cannot be rebuilt: {_one_line(exc)}"
            return ChampionScore(production.model_id, span, original_metrics=dict(production.performance_metrics),
                                 error=error, seconds=clock.seconds)
    return score_production_on_window(production, cfg, loaded.dataset, where.segment, logger, label=label,
                                      registry=registry, settings=settings, candidate_pred=candidate_pred)


def _segment_span(info: ModelInfo, segment: str) -> tuple[str, str]:
    """The registered bounds of ``segment`` (what a window is called when its days cannot be read)."""
    span = ((info.dataset_info.model_extra or {}).get("segments") or {}).get(segment) if info.dataset_info else None
    return (str(span[0])[:10], str(span[1])[:10]) if span and len(span) == 2 else (f"its {segment!r} segment", "")


def _one_line(exc: BaseException) -> str:
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
