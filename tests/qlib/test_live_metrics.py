"""Live metrics of stored predictions: equal to Qlib's calc_ic on the stored scores and the label read with
D.features, written once per scorable day, replaced with a recompute in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
from qlib.contrib.eva.alpha import calc_ic
from qlib.data import D

from registry import ModelRegistry
from registry.settings import Settings, load_settings
from tasks.core import lifecycle
from tasks.core.data.version import data_version
from tasks.core.predictions.daily import predict_name
from tasks.core.predictions.live import label_horizon, last_scorable_day, update_live_metrics
from tasks.core.qlib.session import init_qlib
from tests.qlib.conftest import Trained, env_for

pytestmark = [pytest.mark.qlib, pytest.mark.slow]

DAYS = (date(2022, 11, 10), date(2022, 11, 23))
LABEL = "Ref($close, -2)/Ref($close, -1) - 1"


@pytest.fixture
def registry(qlib_settings: Settings, qlib_data: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    env_for(qlib_settings, monkeypatch)
    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    init_qlib(qlib_data, settings=qlib_settings)  # type: ignore[arg-type]
    yield lifecycle.open_registry(load_settings())


def _promoted(trained: Trained) -> str:
    name = f"live_{uuid.uuid4().hex[:8]}"
    metadata = lifecycle.metadata_for(name, trained.cfg, trained.metrics, experiment_name=trained.result.experiment_name,
                                      recorder_id=trained.result.recorder_id)
    info = lifecycle.register_trained(trained.result.model, metadata, load_settings(), flow_run_id=None)
    lifecycle.promote(info.model_id, load_settings(), actor="test", reason="test")
    return name


def test_the_label_of_alpha158_looks_two_days_ahead(registry: ModelRegistry) -> None:
    assert label_horizon(LABEL) == 2
    calendar = D.calendar(freq="day")
    assert last_scorable_day(2) == calendar[-3].date()


def test_a_days_live_ic_equals_qlibs_calc_ic_on_the_stored_scores_and_the_label(
    linear: Trained, registry: ModelRegistry, qlib_data: object
) -> None:
    name = _promoted(linear)
    predict_name(name, start=DAYS[0], end=DAYS[1], registry=registry, settings=load_settings())
    version = str(data_version(qlib_data))  # type: ignore[arg-type]
    outcome = update_live_metrics(registry, name, data_version=version)

    stored = registry.predictions(name, DAYS)
    assert outcome.written_days == sorted({p.trading_date for p in stored})
    pred = pd.Series({(pd.Timestamp(p.trading_date), p.instrument): p.score for p in stored}).sort_index()
    pred.index = pred.index.set_names(["datetime", "instrument"])
    label = D.features(sorted({p.instrument for p in stored}), [LABEL], start_time=DAYS[0], end_time=DAYS[1])
    label = label.iloc[:, 0].swaplevel().sort_index().reindex(pred.index)
    ic, rank_ic = calc_ic(pred, label)
    live = {day.trading_date: day for day in registry.live_metrics(name)}
    for stamp, value in ic.items():
        day = live[pd.Timestamp(stamp).date()]
        assert day.ic == pytest.approx(value, abs=1e-12)
        assert day.rank_ic == pytest.approx(rank_ic[stamp], abs=1e-12)
        frame = pd.DataFrame({"s": pred.loc[stamp], "l": label.loc[stamp]}).dropna()
        assert day.instruments == len(frame)
        top = frame.nlargest(min(50, day.top_k), "s")["l"].mean()
        assert day.signal_return == pytest.approx(top - frame["l"].mean(), abs=1e-12)
    assert np.isfinite(list(ic)).all()


def test_a_second_run_adds_nothing_and_a_recompute_replaces_exactly_its_days(
    linear: Trained, registry: ModelRegistry, qlib_data: object
) -> None:
    name = _promoted(linear)
    predict_name(name, start=DAYS[0], end=DAYS[1], registry=registry, settings=load_settings())
    version = str(data_version(qlib_data))  # type: ignore[arg-type]
    update_live_metrics(registry, name, data_version=version)
    before = {d.trading_date: d for d in registry.live_metrics(name)}
    assert update_live_metrics(registry, name, data_version=version).written_days == []

    middle = (date(2022, 11, 15), date(2022, 11, 17))
    outcome = predict_name(name, start=middle[0], end=middle[1], recompute=True, registry=registry,
                           settings=load_settings())
    after = {d.trading_date: d for d in registry.live_metrics(name)}
    assert sorted(after) == sorted(before)
    recomputed = [day for day in after if after[day].computed_at != before[day].computed_at]
    assert recomputed == [day for day in sorted(after) if middle[0] <= day <= middle[1]]
    assert all(after[day].ic == pytest.approx(before[day].ic, abs=1e-9) for day in recomputed)
    assert outcome.written_days == recomputed
    assert f"live metrics of {len(recomputed)} day(s) recomputed" in outcome.message
