"""The predict flow on the session's temporary Prefect server, with a real trained model."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from qlib.workflow import R

from flows.predict import PredictResult, predict
from registry import ModelRegistry
from registry.settings import Settings, load_settings
from tasks.core import lifecycle
from tasks.core.data.version import data_version
from tasks.core.qlib import evaluation
from tasks.core.qlib.session import init_qlib
from tasks.core.qlib.training import train_model
from tests.qlib.conftest import Trained

pytestmark = [pytest.mark.qlib, pytest.mark.flows, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def flow_env(qlib_settings: Settings, qlib_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    """A registry of its own (so "every name" means this test's names) on the session's recorders."""
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("QMP_MLFLOW_URI", qlib_settings.resolved_mlflow_uri())
    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    init_qlib(qlib_data, settings=qlib_settings)
    yield lifecycle.open_registry(load_settings())


def _promoted(linear: Trained, settings: Settings) -> tuple[str, str]:
    name, experiment = f"flow_{uuid.uuid4().hex[:8]}", f"predict-flow-{uuid.uuid4().hex[:8]}"
    result = train_model(linear.cfg, linear.dataset, experiment, settings=settings)
    R.get_recorder(recorder_id=result.recorder_id, experiment_name=experiment).save_objects(
        **{"pred.pkl": evaluation.predict(result.model, linear.dataset)}
    )
    metadata = lifecycle.metadata_for(name, linear.cfg, linear.metrics, experiment_name=experiment,
                                       recorder_id=result.recorder_id)
    info = lifecycle.register_trained(result.model, metadata, load_settings(), flow_run_id=None)
    lifecycle.promote(info.model_id, load_settings(), actor="test", reason="test")
    return name, info.model_id


def _artifacts(flow_run_id: Any) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def test_a_run_stores_the_new_days_publishes_the_top_k_and_a_second_run_has_nothing_to_predict(
    flow_env: ModelRegistry, linear: Trained, qlib_settings: Settings, qlib_data: Path
) -> None:
    name, model_id = _promoted(linear, qlib_settings)

    state = predict(model_name=name, from_date=date(2022, 12, 26), top_k=5, return_state=True)

    assert state.is_completed(), state.message
    result: PredictResult = state.result()
    (item,) = result.results
    calendar_end = data_version(qlib_data).calendar_end
    assert item.written_days[0] == date(2022, 12, 26) and item.written_days[-1] == calendar_end
    rows = flow_env.predictions(name)
    assert rows[0].trading_date == calendar_end and {r.model_id for r in rows} == {model_id}
    assert {r.flow_run_id for r in rows} == {str(state.state_details.flow_run_id)}
    assert {r.data_version for r in rows} == {str(data_version(qlib_data))}
    artifact = _artifacts(state.state_details.flow_run_id)[f"signals-{name.replace('_', '-')}"]
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert [row["instrument"] for row in table] == [r.instrument for r in rows[:5]]

    again = predict(model_name=name, return_state=True)
    assert again.is_completed() and "nothing to predict" in (again.message or "")
    assert len(flow_env.predictions(name)) == len(rows)


def test_without_a_name_every_production_name_is_predicted_and_none_means_nothing_to_predict(
    flow_env: ModelRegistry, linear: Trained, qlib_settings: Settings
) -> None:
    empty = predict(return_state=True)
    assert empty.is_completed() and "no model name has a production model" in (empty.message or "")
    first, _ = _promoted(linear, qlib_settings)
    second, _ = _promoted(linear, qlib_settings)
    state = predict(return_state=True)
    assert state.is_completed(), state.message
    assert sorted(r.model_name for r in state.result().results) == sorted([first, second])
    assert flow_env.last_prediction_date(first) == flow_env.last_prediction_date(second) is not None


def test_a_checksum_failure_fails_the_run_in_one_line_and_leaves_predictions_untouched(
    flow_env: ModelRegistry, linear: Trained, qlib_settings: Settings
) -> None:
    name, model_id = _promoted(linear, qlib_settings)
    assert predict(model_name=name, from_date=date(2022, 12, 27), to_date=date(2022, 12, 27), return_state=True).is_completed()
    before = flow_env.predictions(name)
    path = flow_env.registry_dir / model_id / "model.pkl"
    path.write_bytes(path.read_bytes()[:-4] + b"XXXX")

    state = predict(model_name=name, return_state=True)

    assert state.is_failed()
    assert "checksum" in (state.message or "") and "\n" not in (state.message or "")
    assert flow_env.predictions(name) == before


def test_a_name_without_production_fails_in_one_line(flow_env: ModelRegistry) -> None:
    state = predict(model_name="nobody_promoted_me", return_state=True)
    assert state.is_failed() and state.message == "nobody_promoted_me: no production model for 'nobody_promoted_me': promote one first"
