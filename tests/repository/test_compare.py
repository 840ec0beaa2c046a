"""`qmp models compare A B`: metrics side by side with differences, hyperparameter and dataset diffs."""

from __future__ import annotations

import json

import pytest

from registry import DatasetConfig, ModelMetadata, ModelNotFoundError, ModelRegistry
from registry.views.side_by_side import MISSING, compare_models
from tests.cli.test_qmp_models import qmp


@pytest.fixture
def two_models(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    registry.register_model({}, ModelMetadata(
        model_name="lgbm", performance_metrics={"ic_mean": 0.03, "icir": 0.4},
        hyperparameters={"kwargs": {"num_leaves": 31, "learning_rate": 0.1}, "seed": 1},
        dataset_info=DatasetConfig(instruments="csi300", start_time="2010-01-01", end_time="2016-12-31", handler="Alpha158"),
    ))
    registry.register_model({}, ModelMetadata(
        model_name="lgbm", performance_metrics={"ic_mean": 0.05, "max_drawdown": -0.1},
        hyperparameters={"kwargs": {"num_leaves": 63, "learning_rate": 0.1}},
        dataset_info=DatasetConfig(instruments="csi500", start_time="2010-01-01", end_time="2017-12-31", handler="Alpha158"),
    ))
    return registry


def test_comparison_lists_every_metric_and_only_what_differs(two_models: ModelRegistry) -> None:
    result = compare_models(two_models.get_model_info("lgbm_v1.0.0"), two_models.get_model_info("lgbm_v1.1.0"))
    metrics = {m.name: (m.first, m.second, m.difference) for m in result.metrics}
    assert metrics["ic_mean"][:2] == (0.03, 0.05) and metrics["ic_mean"][2] == pytest.approx(0.02)
    assert metrics["icir"] == (0.4, None, None) and metrics["max_drawdown"] == (None, -0.1, None)
    assert [(d.key, d.first, d.second) for d in result.hyperparameters] == [
        ("kwargs.num_leaves", 31, 63), ("seed", 1, MISSING)]
    assert [(d.key, d.first, d.second) for d in result.dataset] == [
        ("end_time", "2016-12-31", "2017-12-31"), ("instruments", "csi300", "csi500")]


def test_qmp_models_compare_prints_tables_and_json(
    two_models: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = qmp("models", "compare", "lgbm_v1.0.0", "lgbm_v1.1.0", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert "+0.0200" in out and "kwargs.num_leaves" in out and "csi500" in out and "Hyperparameters that differ" in out
    code, out, _ = qmp("models", "compare", "lgbm_v1.0.0", "lgbm_v1.1.0", "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)["second"] == "lgbm_v1.1.0"


def test_qmp_models_compare_with_an_unknown_model_fails_in_one_line(
    two_models: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = qmp("models", "compare", "lgbm_v1.0.0", "nope", capsys=capsys, monkeypatch=monkeypatch)
    assert code != 0 and "nope" in out + err and "Traceback" not in out + err
    with pytest.raises(ModelNotFoundError):
        two_models.get_model_info("nope")
