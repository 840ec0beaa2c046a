"""Scheduled retraining on rolled windows: appended data moves the windows, the gate, the stale-data alarm."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flow_engine import run_flow

from flows.retrain import DataFreshness, RetrainResult, WorkflowSource, retrain
from registry import ModelMetadata, ModelRegistry
from registry.policy import Action
from registry.settings import load_settings
from tasks.core.data.ingest.calendar import declare_calendar
from tasks.core.data.qlib_binary import read_calendar
from tasks.core.data.synthetic import append_synthetic, synthesize
from tasks.core.data.version import data_version
from tasks.core.qlib.workflow_config import load_workflow_config
from tasks.core.windows.schedule import WindowSettings, previous_on_same_data, resolve_run

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

LINEAR = Path(__file__).resolve().parents[2] / "examples" / "workflow_config_linear_Alpha158.yaml"
WINDOWS = WindowSettings(mode="rolling", train_days=120, valid_days=40, test_days=40)


@pytest.fixture
def rolling_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelRegistry, Path]:
    """A registry (SQLite), a recorder database and 30 synthetic stocks ending 2022-03-31, for one test."""
    data = synthesize(tmp_path / "qlib", instruments=30, start="2021-01-01", end="2022-03-31", seed=7).out
    registry = ModelRegistry(tmp_path / "registry", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    monkeypatch.setenv("QMP_PROVIDER_URI", str(data))
    monkeypatch.setenv("QMP_MLFLOW_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield registry, data
    registry.close()


def rolled(name: str, **options: Any) -> RetrainResult:
    return retrain(model_name=name, workflow=WorkflowSource(config_path=str(LINEAR)), windows=WINDOWS, **options)


def position(calendar: pd.DatetimeIndex, day: str) -> int:
    return int(calendar.get_loc(pd.Timestamp(day)))


def test_appended_days_move_the_window_and_the_gate_skips_unchanged_data(
    rolling_pipeline: tuple[ModelRegistry, Path],
) -> None:
    registry, data = rolling_pipeline
    first = rolled("rolling")
    assert first.model_id and not first.skipped
    first_info = registry.get_model_info(first.model_id)
    assert first_info.dataset_info is not None
    recorded = first_info.dataset_info.model_dump()
    assert recorded["segments"] == first.segments and recorded["data_version"] == str(data_version(data))
    calendar = read_calendar(data)
    assert position(calendar, first.segments["test"][1]) == len(calendar) - 1 - 2

    added = append_synthetic(data, "2022-04-15", seed=7).days
    second = rolled("rolling")
    assert second.model_id and second.model_id != first.model_id
    calendar = read_calendar(data)
    for name in ("train", "valid", "test"):
        for old, new in zip(first.segments[name], second.segments[name], strict=True):
            assert position(calendar, new) - position(calendar, old) == added
    again = registry.get_model_info(first.model_id)
    assert (again.dataset_info, again.checksum, again.version) == (first_info.dataset_info, first_info.checksum, first_info.version)

    third = rolled("rolling")
    assert third.skipped and third.model_id is None
    assert third.message.startswith(f"no new data since {calendar[-1]:%Y-%m-%d}: nothing to train")
    assert len(registry.list_models()) == 2
    forced_gate = rolled("rolling", force=True)
    assert forced_gate.model_id and not forced_gate.skipped
    assert len(registry.list_models()) == 3

    # A corrected past value is a new data version: the gate lets the next run train.
    close = data / "features" / "sh600000" / "close.day.bin"
    values = np.fromfile(close, dtype="<f4")
    values[10] *= 1.01
    values.tofile(close)
    os.utime(close, ns=(close.stat().st_atime_ns, close.stat().st_mtime_ns + 1_000_000))
    cfg = load_workflow_config(LINEAR, provider_uri=data)
    run = resolve_run(cfg, WINDOWS, qlib_settings=load_settings())
    assert str(run.data_version) != second.data_version
    assert run.data_version.calendar_end == date.fromisoformat(f"{calendar[-1]:%Y-%m-%d}")
    assert previous_on_same_data(registry, "rolling", run) is None


def test_a_window_longer_than_the_calendar_is_refused_before_training(
    rolling_pipeline: tuple[ModelRegistry, Path],
) -> None:
    registry, _ = rolling_pipeline
    too_long = WINDOWS.model_copy(update={"train_days": 400})
    with pytest.raises(ValueError, match="missing") as caught:
        retrain(model_name="too_long", workflow=WorkflowSource(config_path=str(LINEAR)), windows=too_long)
    assert "\n" not in str(caught.value)
    assert registry.list_models() == []


def test_stale_data_fails_a_deployment_run_but_never_a_direct_run(
    rolling_pipeline: tuple[ModelRegistry, Path],
) -> None:
    registry, data = rolling_pipeline
    declare_calendar(data, "XSHG")  # a market's feed: synthetic data keeps its own calendar and no alarm
    parameters = {
        "model_name": "stale",
        "workflow": {"config_path": str(LINEAR)},
        "windows": WINDOWS.model_dump(mode="json"),
        "freshness": DataFreshness(max_data_age_days=5, timezone="Asia/Shanghai").model_dump(mode="json"),
    }
    deployment_id = retrain.to_deployment(name="stale-data-test", parameters=parameters).apply()
    flow_run = run_deployment(deployment_id, timeout=0)
    state = run_flow(retrain, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
    assert state.is_failed()
    message = str(state.message)
    assert "stale data: the calendar ends 2022-03-31" in message and "Asia/Shanghai" in message
    assert registry.list_models() == []
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run.id).state.is_failed()  # type: ignore[union-attr]
    # The same data through a direct run (qmp retrain, the demo) trains: the alarm is for deployments.
    direct = rolled("stale", freshness=DataFreshness(max_data_age_days=5))
    assert direct.model_id is not None


def test_regime_change_candidate_wins_only_because_it_is_compared_on_the_new_window(
    rolling_pipeline: tuple[ModelRegistry, Path],
) -> None:
    registry, data = rolling_pipeline
    # A strong planted alpha, so that 30 stocks and 120 training days are enough for Linear to learn it.
    synthesize(data, instruments=30, start="2021-01-01", end="2022-03-31", seed=7, alpha_strength=3.0, overwrite=True)
    champion = rolled("regime")
    assert champion.decision == Action.PROMOTE
    registered = registry.get_model_info(champion.model_id).performance_metrics  # type: ignore[arg-type]
    assert registered["ic_mean"] > 0  # production learned the planted alpha on the old window
    # After 2022-03-31 the planted alpha flips sign: the old model now predicts backwards.
    append_synthetic(data, "2022-12-30", seed=8, alpha_strength=-3.0)
    challenger = rolled("regime")
    comparison = challenger.comparison
    assert comparison is not None and comparison.data_version == challenger.data_version
    on_window = comparison.production_metrics_on_window["ic_mean"]
    assert on_window < 0 < challenger.metrics["ic_mean"]  # weak on the new window, where the candidate is fine
    assert comparison.production_registered_metrics == registered
    assert comparison.segments == challenger.segments
    assert challenger.decision == Action.PROMOTE and challenger.status == "production"
    # The policy compared production's numbers on the new window, not its registration-time ones.
    assert any(f"vs production {on_window:.6g}" in reason for reason in challenger.reasons)
    assert challenger.production_rescoring_seconds is not None and challenger.production_rescoring_seconds > 0
    compared = [e for e in registry.history(model_id=challenger.model_id) if e.event == "compared"]
    assert compared and "production on window ic_mean" in (compared[-1].reason or "")


def test_a_production_model_that_cannot_be_scored_is_kept_in_auto_mode(
    rolling_pipeline: tuple[ModelRegistry, Path],
) -> None:
    registry, _ = rolling_pipeline
    stand_in = registry.register_model(
        {"stand-in": True}, ModelMetadata(model_name="unscored", performance_metrics={"ic_mean": 0.001})
    )
    registry.set_production_model(stand_in, reason="a model without a Qlib recorder")
    result = rolled("unscored")
    assert result.decision == Action.KEEP
    assert result.production_unscored and "MissingDatasetStateError" in result.production_unscored
    assert "could not be scored on the candidate's window" in result.reasons[0]
    assert registry.get_production_model("unscored").model_id == stand_in  # type: ignore[union-attr]
