"""The predict flow's live step and drift check on the session's temporary Prefect server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.predict import PredictResult, predict
from registry import ModelRegistry
from registry.drift import Verdict, make_rule
from registry.settings import Settings, load_settings
from registry.statuses import EventKind
from tasks.core import lifecycle
from tasks.core.data.version import data_version
from tasks.core.predictions.daily import predict_name
from tasks.core.qlib.session import init_qlib
from tests.qlib.conftest import Trained

pytestmark = [pytest.mark.qlib, pytest.mark.flows, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def flow_env(qlib_settings: Settings, qlib_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("QMP_MLFLOW_URI", qlib_settings.resolved_mlflow_uri())
    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    init_qlib(qlib_data, settings=qlib_settings)
    yield lifecycle.open_registry(load_settings())


def _promoted(trained: Trained) -> str:
    name = f"monitor_{uuid.uuid4().hex[:8]}"
    metadata = lifecycle.metadata_for(name, trained.cfg, trained.metrics, experiment_name=trained.result.experiment_name,
                                      recorder_id=trained.result.recorder_id)
    info = lifecycle.register_trained(trained.result.model, metadata, load_settings(), flow_run_id=None)
    lifecycle.promote(info.model_id, load_settings(), actor="test", reason="test")
    return name


def test_a_run_with_nothing_to_predict_still_scores_the_days_whose_label_arrived_and_drift_is_recorded_once(
    flow_env: ModelRegistry, linear: Trained, qlib_data: Path
) -> None:
    name = _promoted(linear)
    end = data_version(qlib_data).calendar_end
    predict_name(name, start=end - timedelta(days=20), end=end, registry=flow_env, settings=load_settings())
    assert flow_env.live_metrics(name) == []
    flow_env.set_drift_rule(name, make_rule(window=5, min_days=2, floor=0.99))

    first = predict(model_name=name, return_state=True)
    second = predict(model_name=name, return_state=True)

    assert first.is_completed(), first.message
    result: PredictResult = first.result()
    assert result.results[0].written_days == []
    (live,) = result.monitoring
    stored = flow_env.prediction_days(name, end - timedelta(days=20), end)
    assert live.live_days == stored[:-2] and live.waiting_days == 2
    assert live.drift is not None and live.drift.verdict == Verdict.DRIFTED and live.new_drift_episode
    again: PredictResult = second.result()
    assert again.monitoring[0].live_days == [] and not again.monitoring[0].new_drift_episode
    assert again.monitoring[0].drift is not None and again.monitoring[0].drift.drifted
    drifts = [e for e in flow_env.history(name) if e.event == EventKind.DRIFT_DETECTED]
    assert len(drifts) == 1 and "below the floor" in (drifts[0].reason or "")
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[first.state_details.flow_run_id]), type={"any_": ["markdown"]}))
    assert artifact.key == f"live-{name.replace('_', '-')}" and "**drifted**" in str(artifact.data)
