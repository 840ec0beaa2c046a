"""One "better" rule per path: the flow's policy picks candidates; direct library registrations keep the
original registry API's rule (`ic_mean`, higher is better)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import ModelMetadata, ModelRegistry, ModelStatus
from registry.policy import PromotionPolicy, decide_promotion
from registry.settings import load_settings
from tasks.core.lifecycle import mark_candidate, open_registry, register_trained


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    registry = open_registry(load_settings())
    production = registry.register_model({"p": 1}, ModelMetadata(
        model_name="m", performance_metrics={"ic_mean": 0.05, "rank_ic_mean": 0.01}))
    registry.set_production_model(production)
    return registry


def _flow_registration(metrics: dict[str, float], policy: PromotionPolicy, run: str) -> ModelStatus:
    info = register_trained({"m": run}, ModelMetadata(model_name="m", performance_metrics=metrics), load_settings(),
                            flow_run_id=run)
    assert info.status == ModelStatus.REGISTERED
    production = open_registry(load_settings()).get_production_model("m")
    assert production is not None
    decision = decide_promotion(info.performance_metrics, production.performance_metrics, policy)
    return mark_candidate(info, decision, load_settings(), actor="test").status


def test_a_flow_on_rank_ic_makes_a_candidate_of_a_better_rank_ic_model_with_a_worse_ic(registry: ModelRegistry) -> None:
    policy = PromotionPolicy(primary_metric="rank_ic_mean", approval="manual")
    assert _flow_registration({"ic_mean": 0.01, "rank_ic_mean": 0.05}, policy, "run-1") == ModelStatus.CANDIDATE


def test_a_flow_on_rank_ic_leaves_a_better_ic_but_worse_rank_ic_model_registered(registry: ModelRegistry) -> None:
    policy = PromotionPolicy(primary_metric="rank_ic_mean", approval="manual")
    assert _flow_registration({"ic_mean": 0.09, "rank_ic_mean": 0.001}, policy, "run-2") == ModelStatus.REGISTERED


def test_a_direct_registration_uses_the_original_apis_ic_mean_rule(registry: ModelRegistry) -> None:
    better = registry.register_model({"d": 1}, ModelMetadata(model_name="m", performance_metrics={"ic_mean": 0.09}))
    worse = registry.register_model({"d": 2}, ModelMetadata(model_name="m", performance_metrics={"ic_mean": 0.01}))
    assert registry.get_model_info(better).status == ModelStatus.CANDIDATE
    assert registry.get_model_info(worse).status == ModelStatus.REGISTERED
