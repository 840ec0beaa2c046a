"""The shared scoring function on real trained models, checked against Qlib's own PredUpdater."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.data import D
from qlib.workflow import R
from qlib.workflow.online.update import PredUpdater

from registry import ModelRegistry
from registry.errors import CorruptedArtifactError
from registry.settings import Settings
from tasks.core.lifecycle import metadata_for
from tasks.core.qlib.scoring import (
    ANCHOR_BLOCK,
    MissingDatasetStateError,
    OutsideCalendarError,
    block_start,
    load_registered_model,
    score_loaded,
    score_registered_model,
)
from tests.qlib.conftest import Trained, qlib_tolerance, register_trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]


def _recorder(trained: Trained):  # type: ignore[no-untyped-def]
    return R.get_recorder(recorder_id=trained.result.recorder_id, experiment_name=trained.result.experiment_name)


@pytest.mark.parametrize("which", ["lightgbm", "linear"])
def test_scores_equal_qlib_pred_updater_on_the_same_recorder(
    which: str, request: pytest.FixtureRequest, registry: ModelRegistry, qlib_settings: Settings, qlib_on_data: Path
) -> None:
    """Qlib's calendar and PredUpdater read Qlib's global data provider: ``qlib_on_data`` points it at this
    session's data (an earlier test may have left it on another directory)."""
    qlib_data = qlib_on_data
    trained: Trained = request.getfixturevalue(which)
    model_id = register_trained(registry, trained, f"score_{which}")
    # PredUpdater loads from the first day it predicts; ours from that day's block start: start on one.
    calendar = D.calendar(freq="day")
    position = (int(calendar.searchsorted(pd.Timestamp("2022-11-25"))) // ANCHOR_BLOCK + 1) * ANCHOR_BLOCK
    first, last = calendar[position], calendar[min(position + ANCHOR_BLOCK - 1, len(calendar) - 1)]
    assert block_start(first) == first
    updater = PredUpdater(_recorder(trained), from_date=first, to_date=last)
    qlib_dataset = updater.prepare_data()
    by_hand = trained.result.model.predict(qlib_dataset)
    by_updater = updater.update(write=False, ret_new=True)["score"].loc[first:last]

    scores = score_registered_model(model_id, first, last, registry=registry, settings=qlib_settings,
                                    provider_uri=qlib_data)

    assert scores.index.names == ["datetime", "instrument"]
    assert scores.index.get_level_values("datetime").nunique() >= 5
    assert scores.index.get_level_values("datetime").min() >= first
    tolerance = qlib_tolerance(by_hand)
    pd.testing.assert_series_equal(scores, by_hand.sort_index().rename("score").astype("float64"), check_exact=False,
                                   rtol=0, atol=tolerance)
    pd.testing.assert_series_equal(scores, by_updater.rename("score").astype("float64"), check_exact=False, rtol=0,
                                   atol=tolerance)


@pytest.mark.parametrize("which", ["lightgbm", "linear"])
def test_a_short_segment_equals_the_same_days_of_the_training_datasets_full_load(
    which: str, request: pytest.FixtureRequest, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    trained: Trained = request.getfixturevalue(which)
    model_id = register_trained(registry, trained, f"segment_{which}")
    full = trained.result.model.predict(trained.dataset, segment="test").sort_index()

    scores = score_registered_model(model_id, "2022-11-01", "2022-11-30", registry=registry,
                                    settings=qlib_settings, provider_uri=qlib_data)

    expected = full.loc[pd.Timestamp("2022-11-01"):pd.Timestamp("2022-11-30")]
    assert len(scores) == len(expected) > 0
    # Features are float32 and rolling sums start where the load starts (two years earlier for the training
    # dataset), so a few features differ by one float32 step; without the look-back they would be NaN.
    np.testing.assert_allclose(scores.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-5)


def test_training_saves_the_dataset_state_without_its_data(lightgbm: Trained) -> None:
    saved = _recorder(lightgbm).load_object("dataset")
    assert type(saved).__name__ == "DatasetH"
    assert not hasattr(saved.handler, "_data") or saved.handler._data is None or len(saved.handler._data) == 0


def test_a_range_outside_the_calendar_is_one_clear_error(
    lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    loaded = load_registered_model(register_trained(registry, lightgbm, "outside"), registry=registry,
                                   settings=qlib_settings, provider_uri=qlib_data)
    with pytest.raises(OutsideCalendarError, match=r"no trading day between 2030-01-01 and 2030-02-01.*covers"):
        score_loaded(loaded, "2030-01-01", "2030-02-01")


def test_a_model_without_a_recorder_cannot_be_scored(
    lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    metadata = metadata_for("norecorder", lightgbm.cfg, lightgbm.metrics, experiment_name=None, recorder_id=None)
    model_id = registry.register_model(lightgbm.result.model, metadata)
    with pytest.raises(MissingDatasetStateError, match="has no Qlib recorder"):
        score_registered_model(model_id, "2022-12-01", "2022-12-05", registry=registry, settings=qlib_settings,
                               provider_uri=qlib_data)


def test_a_corrupted_artifact_is_refused_before_scoring(
    lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    model_id = register_trained(registry, lightgbm, "corrupt")
    path = registry.registry_dir / model_id / "model.pkl"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CorruptedArtifactError):
        score_registered_model(model_id, "2022-12-01", "2022-12-05", registry=registry, settings=qlib_settings,
                               provider_uri=qlib_data)


def test_a_block_scored_again_is_read_from_memory_with_the_same_scores_until_the_data_changes(
    linear: Trained, lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path
) -> None:
    from tasks.core.features import blocks
    from tasks.core.qlib.session import current_data

    linear_id, lightgbm_id = register_trained(registry, linear, "memo_l"), register_trained(registry, lightgbm, "memo_g")
    loaded = load_registered_model(linear_id, registry=registry, settings=qlib_settings, provider_uri=qlib_data)
    days = ("2022-10-10", "2022-11-18")  # three blocks or so: whatever their number, each is loaded once
    blocks.forget()
    before = blocks.stats()
    first = score_loaded(loaded, *days)
    loads = blocks.stats()["misses"] - before["misses"]
    assert loads >= 2 and blocks.stats()["hits"] == before["hits"]

    again = score_registered_model(linear_id, *days, registry=registry, settings=qlib_settings, provider_uri=qlib_data)
    assert blocks.stats()["misses"] - before["misses"] == loads  # the same features: nothing loaded again
    assert blocks.stats()["hits"] - before["hits"] == loads
    pd.testing.assert_series_equal(again, first, check_exact=True)
    # Another model of the same features under another label expression (the LightGBM YAML's handler): its feature
    # groups come from memory, its label groups from the files, and whether they come from memory or from the
    # files its scores are the same.
    counts = blocks.stats()
    other = score_registered_model(lightgbm_id, *days, registry=registry, settings=qlib_settings, provider_uri=qlib_data)
    assert blocks.stats()["hits"] - counts["hits"] == blocks.stats()["misses"] - counts["misses"] == loads // 2
    other_again = score_registered_model(lightgbm_id, *days, registry=registry, settings=qlib_settings,
                                         provider_uri=qlib_data)
    blocks.forget()
    fresh = score_registered_model(lightgbm_id, *days, registry=registry, settings=qlib_settings, provider_uri=qlib_data)
    pd.testing.assert_series_equal(other, fresh, check_exact=True)
    pd.testing.assert_series_equal(other_again, fresh, check_exact=True)

    # Another data version is another key: what was read from the old files is never served for the new ones.
    data = current_data()
    assert data is not None
    handler = loaded.dataset.handler
    counts = blocks.stats()
    for version in (data[1], data[1], data[1] + "-appended"):
        with blocks.remembered_loads(handler, (data[0], version)):
            handler.data_loader.load(handler.instruments, "2022-11-01", "2022-11-04")
    groups = len(handler.data_loader.fields)  # features and label, each loaded and remembered by itself
    assert (blocks.stats()["misses"] - counts["misses"], blocks.stats()["hits"] - counts["hits"]) == (2 * groups, groups)
