"""Champion re-scoring reads the candidate's raw features once loaded, and runs production's own processors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.workflow import R

from registry import ModelRegistry
from registry.settings import Settings
from tasks.core.approvals.champion import score_production_on_window
from tasks.core.qlib.evaluation import prediction_metrics, raw_label
from tasks.core.qlib.scoring import load_registered_model, score_loaded, score_on_shared_features
from tasks.core.qlib.session import init_from_qlib_init, init_qlib
from tests.qlib.conftest import Trained, register_trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]


def _test_days(trained: Trained) -> tuple[str, str]:
    days = raw_label(trained.dataset, "test").index.get_level_values("datetime")
    return f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}"


def test_production_scored_on_the_candidates_raw_features_equals_its_own_feature_load(
    linear: Trained, lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    """Production (Linear, RobustZScoreNorm fitted on its own span) on the candidate's (LightGBM) raw frame."""
    production = register_trained(registry, linear, "champion_shared")
    first, last = _test_days(lightgbm)
    own_load = score_loaded(load_registered_model(production, registry=registry, settings=qlib_settings,
                                                  provider_uri=qlib_data), first, last)

    loaded = load_registered_model(production, registry=registry, settings=qlib_settings, provider_uri=qlib_data)
    shared, was_shared = score_on_shared_features(loaded, lightgbm.dataset, first, last)

    assert was_shared
    pd.testing.assert_index_equal(shared.index, own_load.index)
    # The candidate's frame was loaded from its train start, production's from its block start: features may
    # differ by one float32 step. Had production been given the candidate's *processed* frame (LightGBM's
    # YAML does not normalise features), its scores would be off by orders of magnitude.
    np.testing.assert_allclose(shared.to_numpy(), own_load.to_numpy(), rtol=0, atol=1e-5)
    assert loaded.timings["features"] < 60


def test_the_champion_score_uses_the_shared_features_and_the_same_metric_code(
    linear: Trained, lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    # Registered as trained before the candidate's window, so all of it counts (overlaps: test_champion_unseen.py).
    production = registry.get_model_info(register_trained(registry, linear, "champion_metrics",
                                                          valid_end="2022-04-20"))
    score = score_production_on_window(production, lightgbm.cfg, lightgbm.dataset, "test", registry=registry,
                                       settings=qlib_settings)

    assert score.scored and score.shared_features, score.error
    assert (score.window[0], score.window[1]) == _test_days(lightgbm) and score.note is None
    loaded = load_registered_model(production.model_id, registry=registry, settings=qlib_settings,
                                   provider_uri=qlib_data)
    pred = score_loaded(loaded, *score.window).to_frame("score")
    label = raw_label(lightgbm.dataset, "test")
    expected, _, _ = prediction_metrics(pred, label, loaded.model, lightgbm.dataset, lightgbm.cfg, "test",
                                        __import__("logging").getLogger("test"))
    assert score.metrics["ic_mean"] == pytest.approx(expected["ic_mean"], abs=1e-4)
    assert score.metrics.keys() == expected.keys()


def test_a_dataset_without_loaded_features_is_not_shared(
    linear: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    production = register_trained(registry, linear, "champion_unshared")
    first, last = _test_days(linear)
    recorder = R.get_recorder(recorder_id=linear.result.recorder_id, experiment_name=linear.result.experiment_name)
    empty = recorder.load_object("dataset")  # the saved state: processors, no data
    loaded = load_registered_model(production, registry=registry, settings=qlib_settings, provider_uri=qlib_data)
    reference = score_loaded(load_registered_model(production, registry=registry, settings=qlib_settings,
                                                   provider_uri=qlib_data), first, last)

    scores, was_shared = score_on_shared_features(loaded, empty, first, last)

    assert not was_shared
    pd.testing.assert_series_equal(scores, reference, check_exact=False, rtol=0, atol=1e-12)


@pytest.mark.parametrize("model", ["linear", "lightgbm"])
def test_production_equal_to_the_candidate_scores_exactly_the_candidates_metrics(
    model: str, request: pytest.FixtureRequest, registry: ModelRegistry, qlib_settings: Settings
) -> None:
    """A retrain of the same configuration on the same window must tie, not win by float32 rounding: Qlib's
    LinearModel predicts in float32 and its rounding depends on the batch and the dtype it is given."""
    trained: Trained = request.getfixturevalue(model)
    production = registry.get_model_info(register_trained(registry, trained, f"champion_tie_{model}",
                                                          valid_end="2022-04-20"))

    score = score_production_on_window(production, trained.cfg, trained.dataset, "test", registry=registry,
                                       settings=qlib_settings)

    assert score.scored and score.shared_features, score.error
    assert score.metrics == trained.metrics


def test_production_is_re_scored_in_the_candidates_qlib_session_keeping_its_region_and_options(
    linear: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    """Loading production must not re-initialise Qlib with defaults (region ``cn``, no options) in the middle of
    the candidate's run: a ``us`` workflow would then be backtested with China's trading rules."""
    from qlib.config import C

    cfg = linear.cfg.model_copy(update={"qlib_init": {**linear.cfg.qlib_init, "region": "us", "kernels": 1}})
    production = registry.get_model_info(register_trained(registry, linear, "champion_session",
                                                          valid_end="2022-04-20"))
    try:
        init_from_qlib_init(cfg.qlib_init, qlib_settings)  # the candidate's session, as its run left it
        score = score_production_on_window(production, cfg, linear.dataset, "test", registry=registry,
                                           settings=qlib_settings)

        assert score.scored, score.error
        assert (C["region"], C["kernels"]) == ("us", 1)
    finally:
        init_qlib(qlib_data, settings=qlib_settings)  # the session's default for the tests after this one
