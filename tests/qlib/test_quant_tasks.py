"""The Prefect tasks inside a real flow: trainings mapped over configurations do not mix their runs."""

from __future__ import annotations

import itertools

import mlflow
import pytest
from prefect import flow, unmapped

from registry.settings import Settings
from tasks import qlib_steps as quant
from tasks.core.qlib.training import TrainResult
from tasks.core.qlib.workflow_config import WorkflowConfig, load_workflow_config
from tests.qlib.conftest import env_for

from .conftest import LINEAR_YAML, Trained

pytestmark = [pytest.mark.qlib, pytest.mark.flows, pytest.mark.slow]


@pytest.fixture
def registry_env(qlib_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The tasks read settings from the environment, as a deployed flow does."""
    env_for(qlib_settings, monkeypatch)
    return qlib_settings


@flow
def train_several(configs: list[WorkflowConfig], dataset: object) -> list[TrainResult]:
    """Map the training task over configurations on Prefect's (threaded) default task runner."""
    futures = quant.train_model.map(configs, unmapped(dataset), unmapped("qmp-tests-mapped"))
    return [future.result() for future in futures]


def test_mapped_trainings_run_one_at_a_time_each_in_its_own_recorder(
    prefect_server: None, registry_env: Settings, linear: Trained
) -> None:
    variants = [
        {"estimator": "ols"},
        {"estimator": "ridge", "alpha": 0.5},
        {"estimator": "lasso", "alpha": 0.001},
    ]
    configs = []
    for kwargs in variants:
        raw = load_workflow_config(LINEAR_YAML, provider_uri=linear.cfg.provider_uri).raw
        raw["task"]["model"]["kwargs"] = kwargs
        configs.append(load_workflow_config(raw))
    results = train_several(configs, linear.dataset)
    client = mlflow.tracking.MlflowClient(tracking_uri=registry_env.resolved_mlflow_uri())
    runs = [client.get_run(result.recorder_id) for result in results]
    assert [run.data.params["model.kwargs.estimator"] for run in runs] == ["ols", "ridge", "lasso"]
    ordered = sorted(runs, key=lambda run: run.info.start_time)
    for earlier, later in itertools.pairwise(ordered):
        assert earlier.info.end_time <= later.info.start_time
