"""Fixtures for the Qlib tests: one small synthetic dataset and the trained models, built once per session."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from registry import ModelRegistry
from registry.settings import Settings
from tasks.core.data.synthetic import SynthReport, synthesize
from tasks.core.lifecycle import metadata_for
from tasks.core.qlib.evaluation import evaluate
from tasks.core.qlib.session import init_qlib
from tasks.core.qlib.training import TrainResult, prepare_dataset, train_model
from tasks.core.qlib.workflow_config import WorkflowConfig, load_workflow_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LIGHTGBM_YAML = EXAMPLES / "workflow_config_lightgbm_Alpha158.yaml"
LINEAR_YAML = EXAMPLES / "workflow_config_linear_Alpha158.yaml"
# Small enough for CI, big enough that the planted alpha is learnable: 40 stocks x ~510 days.
INSTRUMENTS = 40
SEED = 11


@dataclass
class Trained:
    """A configuration, its dataset, the trained model and its test metrics."""

    cfg: WorkflowConfig
    dataset: Any
    result: TrainResult
    metrics: dict[str, float]


@pytest.fixture(scope="session")
def synth_report(tmp_path_factory: pytest.TempPathFactory) -> SynthReport:
    """The session's synthetic Qlib data directory (default date range)."""
    return synthesize(tmp_path_factory.mktemp("qlib") / "data", instruments=INSTRUMENTS, seed=SEED)


@pytest.fixture(scope="session")
def qlib_data(synth_report: SynthReport) -> Path:
    """Path of the session's synthetic Qlib data directory."""
    return synth_report.out


@pytest.fixture(scope="session")
def qlib_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with the registry (and so MLflow's database and artifacts) in a session temp dir."""
    os.environ.pop("QMP_PROVIDER_URI", None)
    registry_dir = tmp_path_factory.mktemp("registry")
    # Explicit, not read from the environment: a variable an earlier test of the worker left set must not decide
    # where the session's recorders live (the tests that call load_settings() point it here with env_for).
    return Settings(registry_dir=registry_dir, mlflow_uri=f"sqlite:///{(registry_dir / 'mlflow.db').resolve()}",
                    database_url=None, artifact_uri=None, mlflow_artifact_uri=None)  # type: ignore[call-arg]


def env_for(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point load_settings() in this test at `settings`' registry and recorders."""
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(settings.registry_dir))
    monkeypatch.setenv("QMP_MLFLOW_URI", settings.resolved_mlflow_uri())
    for variable in ("QMP_DATABASE_URL", "QMP_ARTIFACT_URI", "QMP_MLFLOW_ARTIFACT_URI"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def qlib_on_data(qlib_data: Path, qlib_settings: Settings) -> Path:
    """Qlib initialised on the session's data directory."""
    init_qlib(qlib_data, settings=qlib_settings)
    return qlib_data


def _train(cfg: WorkflowConfig, settings: Settings, experiment: str) -> Trained:
    dataset = prepare_dataset(cfg, settings=settings)
    result = train_model(cfg, dataset, experiment, settings=settings)
    metrics = evaluate(result.model, dataset, cfg, result.recorder_id, settings=settings).metrics
    return Trained(cfg, dataset, result, metrics)


@pytest.fixture(scope="session")
def lightgbm(qlib_data: Path, qlib_settings: Settings) -> Trained:
    """The LightGBM / Alpha158 example YAML, unmodified except for the data directory."""
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=qlib_data)
    return _train(cfg, qlib_settings, "qmp-tests")


@pytest.fixture(scope="session")
def linear(qlib_data: Path, qlib_settings: Settings) -> Trained:
    """The Linear / Alpha158 example YAML on the same data."""
    cfg = load_workflow_config(LINEAR_YAML, provider_uri=qlib_data)
    return _train(cfg, qlib_settings, "qmp-tests")


@pytest.fixture(scope="session")
def shuffled(qlib_data: Path, qlib_settings: Settings) -> Trained:
    """LightGBM on the same features but with training labels shuffled: there is nothing to learn."""
    raw = copy.deepcopy(load_workflow_config(LIGHTGBM_YAML, provider_uri=qlib_data).raw)
    raw["task"]["dataset"].update(
        {"class": "ShuffledLabelDatasetH", "module_path": "tests.qlib.shuffled_dataset"}
    )
    cfg = load_workflow_config(raw, provider_uri=qlib_data)
    return _train(cfg, qlib_settings, "qmp-tests-shuffled")


def qlib_tolerance(reference: pd.Series) -> float:
    """How closely our scores can equal scores Qlib's own code computed: to the last bit when Qlib predicted in
    float64 (LightGBM), to float32 precision when it predicted in float32 (LinearModel's float32 coefficients
    on float32 features: its rounding changes with the batch's size, up to about 5e-7 measured here)."""
    return 1e-12 if reference.dtype == np.float64 else 2e-6


@pytest.fixture
def registry(tmp_path: Path, migrated_sqlite: Callable[[Path], str]) -> Iterator[ModelRegistry]:
    """A SQLite registry of the test's own; the trained models' recorders stay in the session's MLflow store."""
    migrated_sqlite(tmp_path / "registry" / "registry.db")  # where the registry's embedded database lives
    reg = ModelRegistry(tmp_path / "registry")
    yield reg
    reg.close()


def register_trained(
    registry: ModelRegistry, trained: Trained, name: str, *, ic_mean: float | None = None, valid_end: str | None = None
) -> str:
    """Register ``trained``'s model under ``name`` with its recorder (recorded ``ic_mean`` overridden if given;
    with ``valid_end``, registered as if its train and valid segments had ended that day)."""
    metrics = dict(trained.metrics) if ic_mean is None else {**trained.metrics, "ic_mean": ic_mean}
    extras = None
    if valid_end is not None:
        segments = dict(trained.cfg.dataset_info.segments)
        extras = {"segments": {**segments, "train": [segments["train"][0], "2021-06-30"],
                               "valid": ["2021-07-01", valid_end]}}
    metadata = metadata_for(name, trained.cfg, metrics, experiment_name=trained.result.experiment_name,
                            recorder_id=trained.result.recorder_id, dataset_extras=extras)
    return registry.register_model(trained.result.model, metadata)
