"""Production is judged only on days it never saw: the candidate's days after production's train and valid
segments end (plus its label's look-ahead); overlapping windows are restricted or "not comparable"."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from qlib.data import D

from registry import ModelRegistry
from registry.policy import Action, PromotionPolicy, decide_on_window
from registry.settings import Settings
from tasks.core.approvals.champion import UNSEEN_SEGMENT, score_production_on_window
from tasks.core.lifecycle import metadata_for
from tasks.core.qlib import evaluation
from tasks.core.qlib.evaluation import prediction_metrics, raw_label
from tasks.core.qlib.session import init_qlib
from tests.qlib.conftest import Trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]


def _production(registry: ModelRegistry, trained: Trained, name: str, valid_end: str | None = None) -> str:
    """``trained`` registered with its own segments, or with train/valid ending at ``valid_end``."""
    extras = None
    if valid_end is not None:
        extras = {"segments": {"train": ["2021-01-01", "2021-06-30"], "valid": ["2021-07-01", valid_end],
                               "test": ["2022-05-01", "2022-12-15"]}}
    metadata = metadata_for(name, trained.cfg, trained.metrics, experiment_name=trained.result.experiment_name,
                            recorder_id=trained.result.recorder_id, dataset_extras=extras)
    return registry.register_model(trained.result.model, metadata)


def _score(registry: ModelRegistry, production: str, candidate: Trained, settings: Settings, with_pred: bool = True):  # type: ignore[no-untyped-def]
    pred = evaluation.predict(candidate.result.model, candidate.dataset) if with_pred else None
    return score_production_on_window(registry.get_model_info(production), candidate.cfg, candidate.dataset, "test",
                                      registry=registry, settings=settings, candidate_pred=pred)


def test_a_production_model_trained_before_the_window_is_scored_on_all_of_it(
    linear: Trained, lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    production = _production(registry, linear, "unseen_disjoint", valid_end="2021-12-31")
    score = _score(registry, production, lightgbm, qlib_settings)
    days = raw_label(lightgbm.dataset, "test").index.get_level_values("datetime")
    assert score.scored and score.comparable and score.note is None and score.candidate_metrics is None
    assert score.window == (f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}")


def test_an_overlapping_window_compares_both_models_on_the_days_after_productions_training_and_says_so(
    linear: Trained, lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    production = _production(registry, linear, "unseen_overlap", valid_end="2022-06-30")
    score = _score(registry, production, lightgbm, qlib_settings)

    init_qlib(qlib_data, settings=qlib_settings)
    calendar = D.calendar(freq="day")
    seen_until = calendar[calendar.searchsorted(pd.Timestamp("2022-06-30"), side="right") - 1 + 2]
    label = raw_label(lightgbm.dataset, "test")
    kept = label[label.index.get_level_values("datetime") > seen_until]
    assert score.scored and score.comparable, score.error
    assert score.window[0] == f"{kept.index.get_level_values('datetime').min():%Y-%m-%d}"
    assert score.note is not None and f"up to {seen_until.date()}" in score.note and "days after it" in score.note
    pred = evaluation.predict(lightgbm.result.model, lightgbm.dataset)
    pred = pred[pred.index.get_level_values("datetime") > seen_until]
    expected, _, _ = prediction_metrics(pred, kept, lightgbm.result.model, lightgbm.dataset, lightgbm.cfg,
                                        UNSEEN_SEGMENT, logging.getLogger("test"))
    assert score.candidate_metrics is not None
    assert score.candidate_metrics["ic_mean"] == pytest.approx(expected["ic_mean"], abs=1e-12)
    assert score.candidate_metrics["test_days"] == score.metrics["test_days"] == len(set(kept.index.get_level_values(0)))
    decision = decide_on_window(score.candidate_metrics, score.metrics, PromotionPolicy(), window=score.window_text,
                                note=score.note)
    assert decision.reasons[0] == score.note


@pytest.mark.parametrize("valid_end, with_pred", [("2022-12-01", True), ("2022-06-30", False)])
def test_too_few_unseen_days_or_no_candidate_predictions_is_not_comparable_and_never_promotes(
    valid_end: str, with_pred: bool, linear: Trained, lightgbm: Trained, registry: ModelRegistry,
    qlib_settings: Settings,
) -> None:
    production = _production(registry, linear, f"unseen_none_{with_pred}", valid_end=valid_end)
    score = _score(registry, production, lightgbm, qlib_settings, with_pred=with_pred)
    assert not score.scored and not score.comparable and (score.error or "").startswith("not comparable")
    assert ("fewer than min_comparison_days 20" in (score.error or "")) == with_pred
    decision = decide_on_window(lightgbm.metrics, None, PromotionPolicy(),
                                window=score.window_text, production_unscored=score.error)
    assert decision.action == Action.KEEP and "not comparable" in decision.reasons[0]
