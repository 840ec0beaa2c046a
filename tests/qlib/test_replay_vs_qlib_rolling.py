"""The replay's `fixed` mode against Qlib's own `qlib.contrib.rolling.base.Rolling` on the same data and windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from registry import ModelFilter, ModelStatus
from registry.settings import Settings, load_settings
from tasks.core.qlib.session import init_qlib
from tasks.core.qlib.workflow_config import load_workflow_config
from tasks.core.replay.features import ensure_features, window_handler
from tasks.core.replay.plan import ReplayPlan, ReplaySpec, plan_replay
from tasks.core.replay.result import combine
from tasks.core.replay.window import WindowResult, run_window
from tests.replay_data import HORIZON, STEP, WINDOWS, replay_config, synth_replay_data, write_config

pytestmark = [pytest.mark.qlib, pytest.mark.slow]


@pytest.fixture(scope="module")
def replay_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_replay_data(tmp_path_factory.mktemp("replay-data") / "qlib")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(registry_dir=tmp_path_factory.mktemp("replay-registry"))


def _replay(config: dict[str, Any], settings: Settings, processors: str) -> tuple[ReplayPlan, list[WindowResult]]:
    cfg = load_workflow_config(config)
    plan = plan_replay(cfg, "linear", ReplaySpec(step=STEP, horizon=HORIZON, processors=processors), settings)  # type: ignore[arg-type]
    ensure_features(plan)
    return plan, [run_window(plan, window) for window in plan.windows]


def _qlib_rolling(config_path: Path, handler_path: Path, model: str) -> tuple[dict[str, Any], list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """Qlib's Rolling on the replay's handler (its `h_path`, so the features are not loaded twice); the
    handler Qlib's Rolling would build itself is returned as its configuration, to compare with ours."""
    from qlib.contrib.rolling.base import Rolling
    from qlib.workflow import R

    own = Rolling(conf_path=config_path, horizon=HORIZON, step=STEP)
    handler = own.basic_task(enable_handler_cache=False)["dataset"]["kwargs"]["handler"]
    rolling = Rolling(conf_path=config_path, horizon=HORIZON, step=STEP, exp_name=f"qlib_rolling_{model}",
                      rolling_exp=f"qlib_rolling_models_{model}", h_path=str(handler_path))
    tasks = rolling.get_task_list()
    rolling._train_rolling_tasks()
    rolling._ens_rolling()
    recorder = R.get_recorder(experiment_name=f"qlib_rolling_{model}", recorder_id=rolling._rid)
    return handler, tasks, recorder.load_object("pred.pkl"), recorder.load_object("label.pkl")


def _mean_ic(pred: pd.DataFrame, label: pd.DataFrame) -> float:
    from qlib.contrib.eva.alpha import calc_ic

    ic, _ = calc_ic(pred.iloc[:, 0], label.iloc[:, 0])
    return float(ic.mean())


def _fixed_replay_and_qlib_rolling(
    config: dict[str, Any], settings: Settings, work: Path
) -> tuple[ReplayPlan, dict[str, Any], list[dict[str, Any]], tuple[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]:
    """Our replay in `fixed` mode and Qlib's Rolling on the same configuration: (plan, Qlib's handler config,
    Qlib's tasks, (our predictions, our labels), (Qlib's predictions, Qlib's labels))."""
    import mlflow

    plan, results = _replay(config, settings, "fixed")
    assert mlflow.active_run() is None  # a window's fit leaves no MLflow run open (LGBModel logs to R)
    assert not ensure_features(plan).built  # the replay built its raw features, once
    handler_path = work / "handler.pkl"  # the replay's fixed handler, given to Qlib's Rolling as its h_path
    window_handler(plan, plan.windows[0])[0].to_pickle(handler_path, dump_all=True)
    handler, tasks, theirs, their_label = _qlib_rolling(
        write_config(config, work / "rolling" / "workflow.yaml"), handler_path, config["task"]["model"]["class"]
    )
    return plan, handler, tasks, combine(results), (theirs, their_label)


def test_fixed_mode_predictions_and_ic_equal_qlib_rolling(
    replay_data: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Qlib's Rolling keeps its recorders' artifacts in ./mlruns
    config = replay_config(replay_data)
    init_qlib(replay_data, settings=settings)
    plan, handler, tasks, (ours, our_label), (theirs, their_label) = _fixed_replay_and_qlib_rolling(
        config, settings, tmp_path
    )

    # The handler the replay built is the one Qlib's Rolling would build (label rewritten for the horizon).
    assert plan.handler_config["kwargs"]["label"] == handler["kwargs"]["label"]
    assert {k: str(v) for k, v in plan.handler_config["kwargs"].items()} == {k: str(v) for k, v in handler["kwargs"].items()}
    assert len(plan.windows) == len(tasks) == WINDOWS
    for window, task in zip(plan.windows, tasks, strict=True):
        expected = {k: [pd.Timestamp(a).date().isoformat(), pd.Timestamp(b).date().isoformat()]
                    for k, (a, b) in task["dataset"]["kwargs"]["segments"].items()}
        # The last window stops at the period's end; Qlib's stops there too, through its handler's end_time.
        expected["test"][1] = min(expected["test"][1], config["task"]["dataset"]["kwargs"]["segments"]["test"][1])
        assert window.segments == expected
    assert ours.index.equals(theirs.index)
    np.testing.assert_allclose(ours["score"].to_numpy(), theirs.iloc[:, 0].to_numpy(), rtol=0, atol=1e-6)
    assert our_label.index.equals(their_label.index)
    assert abs(_mean_ic(ours, our_label) - _mean_ic(theirs, their_label)) < 1e-6

    registry_versions = ModelFilter(tags={"replay_id": plan.replay_id})
    from tasks.core.lifecycle import open_registry

    versions = open_registry(settings).list_models(registry_versions)
    assert sorted(v.version for v in versions) == [f"{i}.0.0" for i in range(1, WINDOWS + 1)]
    assert {v.status for v in versions} == {ModelStatus.REGISTERED}
    assert all(v.model_name == plan.replay_name and v.tags["replay_of"] == "linear" for v in versions)


def test_fixed_mode_lightgbm_combined_ic_is_within_0_005_of_qlib_rolling(
    replay_data: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = replay_config(replay_data)
    config["task"]["model"] = {
        "class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
        "kwargs": {"loss": "mse", "num_leaves": 15, "learning_rate": 0.1, "num_boost_round": 60,
                   "early_stopping_rounds": 20, "num_threads": 1, "seed": 7, "verbosity": -1},
    }
    init_qlib(replay_data, settings=settings)
    plan, _, tasks, (ours, our_label), (theirs, their_label) = _fixed_replay_and_qlib_rolling(config, settings, tmp_path)

    assert len(plan.windows) == len(tasks) == WINDOWS
    assert ours.index.equals(theirs.index) and our_label.index.equals(their_label.index)
    ours_ic, theirs_ic = _mean_ic(ours, our_label), _mean_ic(theirs, their_label)
    assert np.isfinite(ours_ic) and np.isfinite(theirs_ic)
    assert abs(ours_ic - theirs_ic) < 0.005, (ours_ic, theirs_ic)


def test_refit_mode_fits_processors_on_each_windows_train_span(replay_data: Path, settings: Settings) -> None:
    config = replay_config(replay_data)
    init_qlib(replay_data, settings=settings)
    plan, results = _replay(config, settings, "refit")
    # refit truncates with the label's own look-ahead (h + 1 = horizon + 2), one day more than Qlib's Rolling.
    assert plan.truncation_days == HORIZON + 2
    last = plan.windows[-1]
    handler, _, _ = window_handler(plan, last)
    fitted = [p for p in handler.get_all_processors() if hasattr(p, "fit_start_time")]
    assert fitted and all(
        (pd.Timestamp(p.fit_start_time), pd.Timestamp(p.fit_end_time))
        == (pd.Timestamp(last.fit_start_time), pd.Timestamp(last.fit_end_time)) for p in fitted
    )
    first_test = pd.Timestamp(plan.windows[0].segments["test"][0])
    assert pd.Timestamp(plan.windows[0].fit_end_time) < first_test
    pred, label = combine(results)
    assert pred.index.get_level_values("datetime").min() == first_test
    assert np.isfinite(_mean_ic(pred, label))
