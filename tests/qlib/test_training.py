"""Training: real Qlib models on the synthetic data, recorded as Qlib recorder runs."""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path

import mlflow
import pytest
from qlib.workflow import R

from registry.settings import Settings
from tasks import qlib_steps as quant
from tasks.core.qlib.training import TrainResult, train_model
from tasks.core.qlib.workflow_config import load_workflow_config

from .conftest import LINEAR_YAML, Trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]


def test_lightgbm_on_the_planted_alpha_has_a_clearly_positive_ic(lightgbm: Trained) -> None:
    assert lightgbm.metrics["ic_mean"] > 0.05
    assert lightgbm.metrics["rank_ic"] > 0.05
    assert lightgbm.metrics["icir"] > 0.3


def test_lightgbm_on_shuffled_labels_has_no_ic(lightgbm: Trained, shuffled: Trained) -> None:
    assert abs(shuffled.metrics["ic_mean"]) < 0.03
    assert lightgbm.metrics["ic_mean"] - shuffled.metrics["ic_mean"] > 0.05


def test_lightgbm_beats_the_linear_configuration_on_the_non_linear_alpha(
    lightgbm: Trained, linear: Trained
) -> None:
    assert linear.result.model_type == "LinearModel"
    assert linear.metrics["ic_mean"] > 0.03  # it still finds the linear part
    assert lightgbm.metrics["ic_mean"] > linear.metrics["ic_mean"] + 0.02


def test_training_is_a_recorder_run_with_params_and_the_model_saved(
    lightgbm: Trained, qlib_settings: Settings
) -> None:
    result = lightgbm.result
    assert (result.experiment_name, result.params["num_leaves"]) == ("qmp-tests", 210)
    recorder = R.get_recorder(recorder_id=result.recorder_id, experiment_name=result.experiment_name)
    params = recorder.list_params()
    assert params["model.class"] == "LGBModel"
    assert params["dataset.kwargs.handler.class"] == "Alpha158"
    metrics = recorder.list_metrics()
    assert metrics["ic_mean"] == pytest.approx(lightgbm.metrics["ic_mean"], abs=1e-12)
    assert "l2.valid" in metrics  # LightGBM's per-iteration evaluation
    reloaded = recorder.load_object("params.pkl")
    pred = reloaded.predict(lightgbm.dataset)
    assert pred.equals(result.model.predict(lightgbm.dataset))
    assert recorder.load_object("pred.pkl").shape[1] == 1


def test_recorder_artifacts_land_inside_the_registry_dir(lightgbm: Trained, qlib_settings: Settings) -> None:
    client = mlflow.tracking.MlflowClient(tracking_uri=qlib_settings.resolved_mlflow_uri())
    artifact_uri = client.get_run(lightgbm.result.recorder_id).info.artifact_uri
    registry_dir = qlib_settings.registry_dir.resolve()
    assert artifact_uri.startswith((registry_dir / "mlruns").as_uri())
    artifacts = Path(artifact_uri.removeprefix("file://"))
    assert (artifacts / "params.pkl").is_file()
    assert (artifacts / "portfolio_analysis" / "report_normal_1day.pkl").is_file()


def test_progress_goes_to_the_given_logger(
    linear: Trained, qlib_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("qmp.test.run")
    with caplog.at_level(logging.INFO, logger="qmp.test.run"):
        train_model(linear.cfg, linear.dataset, "qmp-tests-log", logger=logger, settings=qlib_settings)
    messages = [r.getMessage() for r in caplog.records if r.name == "qmp.test.run"]
    assert any(m.startswith("training LinearModel in experiment 'qmp-tests-log'") for m in messages)
    assert any(m.startswith("trained LinearModel") for m in messages)
    assert any("starts running under Experiment" in m for m in messages)  # Qlib's own log lines


def test_lightgbm_evaluation_lines_go_to_the_given_logger(
    lightgbm: Trained, qlib_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    raw = copy.deepcopy(lightgbm.cfg.raw)
    raw["task"]["model"]["kwargs"].update(num_boost_round=3, early_stopping_rounds=2)
    small = load_workflow_config(raw)
    logger = logging.getLogger("qmp.test.lgb")
    with caplog.at_level(logging.INFO, logger="qmp.test.lgb"):
        train_model(small, lightgbm.dataset, "qmp-tests-log", logger=logger, settings=qlib_settings)
    messages = [r.getMessage() for r in caplog.records if r.name == "qmp.test.lgb"]
    assert any("valid's l2" in m for m in messages), messages


def test_concurrent_trainings_do_not_mix_their_recorder_runs(
    linear: Trained, qlib_settings: Settings
) -> None:
    ridge_raw = load_workflow_config(LINEAR_YAML, provider_uri=linear.cfg.provider_uri).raw
    ridge_raw["task"]["model"]["kwargs"] = {"estimator": "ridge", "alpha": 0.5}
    configs = {"ols": linear.cfg, "ridge": load_workflow_config(ridge_raw)}
    results: dict[str, TrainResult] = {}

    def run(name: str) -> None:
        results[name] = train_model(
            configs[name], linear.dataset, f"qmp-tests-{name}", settings=qlib_settings
        )

    threads = [threading.Thread(target=run, args=(name,)) for name in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = mlflow.tracking.MlflowClient(tracking_uri=qlib_settings.resolved_mlflow_uri())
    runs = {name: client.get_run(result.recorder_id) for name, result in results.items()}
    assert runs["ols"].data.params["model.kwargs.estimator"] == "ols"
    assert runs["ridge"].data.params["model.kwargs.estimator"] == "ridge"
    first, second = sorted(runs.values(), key=lambda run: run.info.start_time)
    assert first.info.end_time <= second.info.start_time  # serialised, not interleaved
    for name, run in runs.items():
        experiment = client.get_experiment(run.info.experiment_id)
        assert experiment.name == f"qmp-tests-{name}"


def test_prefect_tasks_retry_only_idempotent_steps() -> None:
    assert quant.prepare_dataset.retries == 2
    assert quant.train_model.retries == 0
    assert quant.evaluate_model.retries == 1
