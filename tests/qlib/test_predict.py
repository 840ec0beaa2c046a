"""Daily predictions on real trained models: incremental equals full, no look-ahead, the production rule,
and Qlib's own OnlineToolR / PredUpdater working on our recorders."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.workflow import R
from qlib.workflow.online.utils import OnlineToolR
from sqlalchemy import update

from registry import ModelRegistry
from registry.errors import CorruptedArtifactError
from registry.settings import Settings, load_settings
from registry.store.tables import ModelEventRow
from tasks.core import lifecycle
from tasks.core.data.version import data_version
from tasks.core.features import blocks
from tasks.core.predictions.daily import NoProductionModelError, market_close, predict_name
from tasks.core.qlib import evaluation
from tasks.core.qlib.scoring import OutsideCalendarError, score_registered_model
from tasks.core.qlib.session import init_qlib
from tasks.core.qlib.training import TrainResult, train_model
from tests.qlib.conftest import Trained, env_for, qlib_tolerance

pytestmark = [pytest.mark.qlib, pytest.mark.slow]

# 20 trading days of the synthetic calendar, inside the test segment of the example YAMLs.
TWENTY = (date(2022, 11, 10), date(2022, 12, 7))


@dataclass
class Setup:
    registry: ModelRegistry
    settings: Settings
    data: Path


@pytest.fixture
def setup(qlib_settings: Settings, qlib_data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """The environment a deployed flow has: registry and MLflow where the session's recorders are."""
    env_for(qlib_settings, monkeypatch)
    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    init_qlib(qlib_data, settings=qlib_settings)
    yield Setup(lifecycle.open_registry(load_settings()), qlib_settings, qlib_data)
    init_qlib(qlib_data, settings=qlib_settings)  # a test may have moved Qlib to a copy of the data


def _own_recorder(trained: Trained, settings: Settings, experiment: str) -> TrainResult:
    """A fresh recorder with the model, its dataset state and its test-segment pred.pkl (as SignalRecord)."""
    result = train_model(trained.cfg, trained.dataset, experiment, settings=settings)
    pred = evaluation.predict(result.model, trained.dataset)
    R.get_recorder(recorder_id=result.recorder_id, experiment_name=experiment).save_objects(**{"pred.pkl": pred})
    return result


def _register_and_promote(trained: Trained, result: TrainResult, name: str) -> str:
    metadata = lifecycle.metadata_for(name, trained.cfg, trained.metrics, experiment_name=result.experiment_name,
                                       recorder_id=result.recorder_id)
    info = lifecycle.register_trained(result.model, metadata, load_settings(), flow_run_id=None)
    lifecycle.promote(info.model_id, load_settings(), actor="test", reason="test")
    return info.model_id


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _backdate(registry: ModelRegistry, promoted: dict[str, datetime]) -> None:
    """Move each model's history events to a past moment, as if it had been registered and promoted then."""
    with registry.db.sessions.begin() as session:
        for model_id, when in promoted.items():
            session.execute(update(ModelEventRow).where(ModelEventRow.model_id == model_id).values(created_at=when))


def _stored(registry: ModelRegistry, name: str, first: date, last: date) -> pd.Series:
    rows = registry.predictions(name, (first, last))
    return pd.Series({(pd.Timestamp(r.trading_date), r.instrument): r.score for r in rows}).sort_index()


@dataclass
class TwentyDays:
    """The same twenty days of one model stored two ways: predicted one by one, and predicted at once."""

    trained: Trained
    one_by_one: pd.Series
    together: pd.Series
    written: tuple[int, int]


@dataclass
class Predicted:
    models: dict[str, TwentyDays]
    day_loads: dict[str, int]  # field-group loads of the one-by-one days, from the files (misses) or memory (hits)


@pytest.fixture(scope="module")
def twenty_days(lightgbm: Trained, linear: Trained, qlib_settings: Settings, qlib_data: Path) -> Predicted:
    """Both models predict the twenty days one by one, then (after forgetting every loaded block) all at once.

    Day by day, the two models ask for the same feature group (both read Alpha158 on the same instruments, under
    different label expressions), so the second model's features of a day come from the first one's load: each
    day is still loaded for itself, and every model-dependent step (label, processors, prediction, storage)
    runs for each model."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        env_for(qlib_settings, monkeypatch)
        monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
        init_qlib(qlib_data, settings=qlib_settings)
        registry, settings = lifecycle.open_registry(load_settings()), load_settings()
        models = {"lightgbm": lightgbm, "linear": linear}
        names = {}
        for which, trained in models.items():
            result = _own_recorder(trained, qlib_settings, _name("predict-inc"))
            names[which] = (_name("daily"), _name("at_once"))
            for name in names[which]:
                _register_and_promote(trained, result, name)
        days = pd.bdate_range(*TWENTY)
        first, last = days[0].date(), days[-1].date()
        blocks.forget()  # no block an earlier test loaded answers a day here
        before = blocks.stats()
        one_day_writes = dict.fromkeys(models, 0)
        for day in days:
            for which, (daily, _) in names.items():
                run = predict_name(daily, start=day.date(), end=day.date(), registry=registry, settings=settings)
                one_day_writes[which] += len(run.written_days)
        loads = {k: blocks.stats()[k] - before[k] for k in ("hits", "misses")}
        blocks.forget()  # the whole range loaded for itself, not read from the blocks the single days loaded
        wholes = {which: predict_name(at_once, start=first, end=last, registry=registry, settings=settings)
                  for which, (_, at_once) in names.items()}
        stored = {which: TwentyDays(models[which], _stored(registry, daily, first, last),
                                    _stored(registry, at_once, first, last),
                                    (one_day_writes[which], len(wholes[which].written_days)))
                  for which, (daily, at_once) in names.items()}
        return Predicted(stored, loads)


def test_each_day_is_loaded_once_for_both_models_of_the_same_features(twenty_days: Predicted) -> None:
    # first model: features and label from the files; second: the same features from memory, its own label
    assert twenty_days.day_loads == {"hits": 20, "misses": 20 * 3}


@pytest.mark.parametrize("which", ["lightgbm", "linear"])
def test_twenty_days_predicted_one_by_one_equal_the_same_days_predicted_at_once(
    which: str, twenty_days: Predicted
) -> None:
    stored = twenty_days.models[which]
    one_by_one, together = stored.one_by_one, stored.together
    first, last = TWENTY

    assert stored.written == (20, 20)
    assert len(together) > 20 * 30
    pd.testing.assert_index_equal(one_by_one.index, together.index)
    np.testing.assert_allclose(one_by_one.to_numpy(), together.to_numpy(), rtol=0, atol=1e-9)
    # and both equal the model on the training dataset's own full-history load
    full = stored.trained.result.model.predict(stored.trained.dataset, segment="test").sort_index()
    full = full.loc[pd.Timestamp(first):pd.Timestamp(last)]
    full = full[full.index.isin(together.index)]
    np.testing.assert_allclose(together.loc[full.index].to_numpy(), full.to_numpy(), rtol=0, atol=qlib_tolerance(full))


def test_a_run_predicts_from_the_day_after_the_last_stored_one_and_then_has_nothing_to_do(
    linear: Trained, setup: Setup
) -> None:
    name = _name("incremental")
    _register_and_promote(linear, _own_recorder(linear, setup.settings, _name("predict-incr")), name)
    first = predict_name(name, start=date(2022, 12, 20), end=date(2022, 12, 22), registry=setup.registry, settings=load_settings())
    assert first.written_days == [date(2022, 12, 20), date(2022, 12, 21), date(2022, 12, 22)]
    second = predict_name(name, registry=setup.registry, settings=load_settings())
    calendar_end = data_version(setup.data).calendar_end
    assert second.written_days[0] == date(2022, 12, 23) and second.written_days[-1] == calendar_end
    assert second.data_version == str(data_version(setup.data))
    third = predict_name(name, registry=setup.registry, settings=load_settings())
    assert not third.predicted and "nothing to predict" in third.message
    assert setup.registry.last_prediction_date(name) == calendar_end


def test_a_promotion_hands_the_next_days_to_the_new_model(linear: Trained, setup: Setup) -> None:
    """The signal of a day comes from the model that was production at that day's close (Shanghai time)."""
    name = _name("handover")
    experiment = _name("predict-handover")
    old = _register_and_promote(linear, _own_recorder(linear, setup.settings, experiment), name)
    new = _register_and_promote(linear, _own_recorder(linear, setup.settings, experiment), name)
    # The history as if the old model was promoted on 2022-12-01 and the new one after 2022-12-21's close.
    promoted = {old: datetime(2022, 12, 1, 1, 0, tzinfo=UTC), new: datetime(2022, 12, 21, 8, 0, tzinfo=UTC)}
    _backdate(setup.registry, promoted)
    assert market_close(date(2022, 12, 21)) < promoted[new]

    outcome = predict_name(name, start=date(2022, 12, 19), end=date(2022, 12, 23), registry=setup.registry, settings=load_settings())

    by_day = {d.trading_date: d.model_id for d in outcome.days}
    assert by_day == {date(2022, 12, 19): old, date(2022, 12, 20): old, date(2022, 12, 21): old,
                      date(2022, 12, 22): new, date(2022, 12, 23): new}
    assert outcome.message.endswith(
        f"by {old}, {new} (production now: {new}; a day takes the model production at its close, a day before the "
        "name's first promotion the first model promoted)")
    stored = {r.trading_date: r.model_id for r in setup.registry.predictions(name, (date(2022, 12, 19), date(2022, 12, 23)))}
    assert stored == by_day


def test_a_future_day_with_absurd_prices_leaves_earlier_scores_unchanged(
    lightgbm: Trained, setup: Setup, tmp_path: Path
) -> None:
    name = _name("no_lookahead")
    model_id = _register_and_promote(lightgbm, _own_recorder(lightgbm, setup.settings, _name("predict-future")), name)
    before = score_registered_model(model_id, "2022-12-01", "2022-12-31", registry=setup.registry, settings=load_settings())
    copy = tmp_path / "data"
    shutil.copytree(setup.data, copy)
    new_day = _append_absurd_day(copy)

    after = score_registered_model(model_id, "2022-12-01", new_day, registry=setup.registry, settings=load_settings(), provider_uri=copy)

    assert after.index.get_level_values("datetime").max() == pd.Timestamp(new_day)
    earlier = after[after.index.get_level_values("datetime") < pd.Timestamp(new_day)]
    pd.testing.assert_index_equal(earlier.index, before.index)
    np.testing.assert_allclose(earlier.to_numpy(), before.to_numpy(), rtol=0, atol=1e-12)
    assert str(data_version(copy)) != str(data_version(setup.data))


def _append_absurd_day(root: Path) -> str:
    """Append one trading day on which every price is 1000 times the last close (and volume too)."""
    calendar_file = root / "calendars" / "day.txt"
    days = calendar_file.read_text().split()
    last = pd.Timestamp(days[-1])
    new_day = (last + pd.offsets.BDay(1)).strftime("%Y-%m-%d")
    calendar_file.write_text("\n".join([*days, new_day]) + "\n")
    for universe in (root / "instruments").glob("*.txt"):
        lines = [line.split("\t") for line in universe.read_text().splitlines()]
        universe.write_text("".join(
            f"{sym}\t{start}\t{new_day if end == days[-1] else end}\n" for sym, start, end in lines
        ))
    for directory in (root / "features").iterdir():
        for field in directory.glob("*.day.bin"):
            values = np.fromfile(field, dtype="<f4")
            if int(values[0]) + len(values) - 1 != len(days):  # the series stopped before the calendar's end
                continue
            absurd = values[-1] * (1000.0 if field.name.split(".")[0] != "factor" else 1.0)
            np.append(values, np.float32(absurd)).astype("<f4").tofile(field)
    return new_day


def test_qlib_online_tool_sees_exactly_the_production_recorder_and_updates_it_in_step_with_us(
    linear: Trained, setup: Setup
) -> None:
    name, experiment = _name("online"), _name("predict-online")
    old_result = _own_recorder(linear, setup.settings, experiment)
    new_result = _own_recorder(linear, setup.settings, experiment)
    old_id = _register_and_promote(linear, old_result, name)
    new_id = _register_and_promote(linear, new_result, name)
    _backdate(setup.registry, {old_id: datetime(2022, 12, 1, tzinfo=UTC), new_id: datetime(2022, 12, 15, 9, tzinfo=UTC)})
    tool = OnlineToolR(experiment)

    assert [rec.id for rec in tool.online_models()] == [new_result.recorder_id]

    tool.update_online_pred(to_date="2022-12-22")
    recorder = R.get_recorder(recorder_id=new_result.recorder_id, experiment_name=experiment)
    by_qlib = recorder.load_object("pred.pkl")["score"]
    assert by_qlib.index.get_level_values("datetime").max() == pd.Timestamp("2022-12-22")

    outcome = predict_name(name, start=date(2022, 12, 16), registry=setup.registry, settings=load_settings())
    assert {d.model_id for d in outcome.days} == {new_id}
    extended = recorder.load_object("pred.pkl")["score"]
    calendar_end = pd.Timestamp(data_version(setup.data).calendar_end)
    assert extended.index.get_level_values("datetime").max() == calendar_end
    qlib_days = by_qlib.loc[pd.Timestamp("2022-12-16"):pd.Timestamp("2022-12-22")]
    np.testing.assert_allclose(extended.loc[qlib_days.index].to_numpy(), qlib_days.to_numpy(), rtol=0,
                               atol=qlib_tolerance(qlib_days))
    # the test segment's scores saved at training are still there, unchanged
    assert extended.index.get_level_values("datetime").min() == by_qlib.index.get_level_values("datetime").min()


def test_no_production_model_is_one_clear_error(setup: Setup, linear: Trained) -> None:
    with pytest.raises(NoProductionModelError, match=r"no production model for 'never_promoted'"):
        predict_name("never_promoted", registry=setup.registry, settings=load_settings())


def test_a_range_outside_the_calendar_is_one_clear_error_and_writes_nothing(linear: Trained, setup: Setup) -> None:
    name = _name("outside")
    _register_and_promote(linear, _own_recorder(linear, setup.settings, _name("predict-outside")), name)
    with pytest.raises(OutsideCalendarError, match=r"2031-01-01..2031-02-01 is outside the data calendar"):
        predict_name(name, start=date(2031, 1, 1), end=date(2031, 2, 1), registry=setup.registry, settings=load_settings())
    assert setup.registry.last_prediction_date(name) is None


def test_a_corrupted_production_artifact_fails_and_leaves_predictions_untouched(linear: Trained, setup: Setup) -> None:
    name = _name("corrupt")
    model_id = _register_and_promote(linear, _own_recorder(linear, setup.settings, _name("predict-corrupt")), name)
    predict_name(name, start=date(2022, 12, 20), end=date(2022, 12, 20), registry=setup.registry, settings=load_settings())
    before = setup.registry.predictions(name)
    path = setup.registry.registry_dir / model_id / "model.pkl"
    path.write_bytes(path.read_bytes()[:-4] + b"XXXX")
    with pytest.raises(CorruptedArtifactError):
        predict_name(name, registry=setup.registry, settings=load_settings())
    assert setup.registry.predictions(name) == before
    assert setup.registry.last_prediction_date(name) == date(2022, 12, 20)


def test_instruments_without_data_on_a_day_are_left_out_and_counted(linear: Trained, setup: Setup) -> None:
    from qlib.data import D

    name = _name("missing")
    _register_and_promote(linear, _own_recorder(linear, setup.settings, _name("predict-missing")), name)
    closes = D.features(D.instruments("csi300"), ["$close"], start_time="2022-11-01", end_time="2022-12-30")
    suspended = closes[closes["$close"].isna()]
    assert len(suspended), "the synthetic data has suspensions"
    day = suspended.index.get_level_values("datetime")[0]
    gone = set(suspended.xs(day, level="datetime").index)

    outcome = predict_name(name, start=day.date(), end=day.date(), registry=setup.registry, settings=load_settings())

    (report,) = outcome.days
    assert report.missing >= len(gone) and "without data" in outcome.message
    stored = {r.instrument for r in setup.registry.predictions(name, day.date())}
    assert stored and not stored & gone


def test_experiments_keep_recorder_artifacts_in_the_shared_artifact_uri_when_set(tmp_path: Path) -> None:
    import mlflow

    from registry.settings import load_settings
    from tasks.core.qlib.session import ensure_experiment

    settings = load_settings(registry_dir=tmp_path / "registry", mlflow_artifact_uri="s3://team-bucket/mlruns/")
    experiment_id = ensure_experiment("shared_name", settings)
    client = mlflow.tracking.MlflowClient(tracking_uri=settings.resolved_mlflow_uri())
    assert client.get_experiment(experiment_id).artifact_location == "s3://team-bucket/mlruns/shared_name"
