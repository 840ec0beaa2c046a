"""One production model per name, the swap on promotion, auto-candidates and deletion rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from registry import (
    AmbiguousProductionError,
    ModelRegistry,
    ModelStatus,
    ProductionModelDeletionError,
)
from tests.registry.registry_helpers import metadata


def status(registry: ModelRegistry, model_id: str) -> ModelStatus:
    return registry.get_model_info(model_id).status


def test_promotion_swaps_old_production_to_candidate(registry: ModelRegistry, model: Any) -> None:
    old = registry.register_model(model, metadata(ic_mean=0.01))
    new = registry.register_model(model, metadata(ic_mean=0.02))
    registry.set_production_model(old)
    info = registry.set_production_model(new, actor="bob", reason="better IC")
    assert info.model_id == new and info.status == ModelStatus.PRODUCTION
    assert status(registry, old) == ModelStatus.CANDIDATE
    production = registry.get_production_model("lgbm_alpha158")
    assert production is not None and production.model_id == new


def test_promoting_the_production_model_again_changes_nothing(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_production_model(model_id)
    registry.set_production_model(model_id)
    assert [e.event for e in registry.history(model_id=model_id)] == ["registered", "promoted"]


def test_get_production_model_by_name_is_none_without_one(registry: ModelRegistry, model: Any) -> None:
    registry.register_model(model, metadata("a"))
    assert registry.get_production_model("a") is None
    assert registry.get_production_model("never_registered") is None


def test_get_production_model_without_name_returns_the_only_one(registry: ModelRegistry, model: Any) -> None:
    assert registry.get_production_model() is None
    a = registry.register_model(model, metadata("a"))
    registry.register_model(model, metadata("b"))
    assert registry.get_production_model() is None
    registry.set_production_model(a)
    production = registry.get_production_model()
    assert production is not None and production.model_id == a


def test_get_production_model_without_name_is_ambiguous_with_several_names(registry: ModelRegistry, model: Any) -> None:
    a = registry.register_model(model, metadata("a"))
    b = registry.register_model(model, metadata("b"))
    registry.set_production_model(a)
    registry.set_production_model(b)
    with pytest.raises(AmbiguousProductionError, match="model_name"):
        registry.get_production_model()
    assert registry.get_production_model("a").model_id == a  # type: ignore[union-attr]
    assert registry.get_production_model("b").model_id == b  # type: ignore[union-attr]


def test_each_name_keeps_its_own_production_model(registry: ModelRegistry, model: Any) -> None:
    a = registry.register_model(model, metadata("a"))
    b = registry.register_model(model, metadata("b"))
    registry.set_production_model(a)
    registry.set_production_model(b)
    assert status(registry, a) == status(registry, b) == ModelStatus.PRODUCTION


def test_direct_sql_cannot_create_a_second_production_row(
    registry: ModelRegistry, model: Any, database_url: str
) -> None:
    first = registry.register_model(model, metadata())
    second = registry.register_model(model, metadata())
    registry.set_production_model(first)
    engine = create_engine(database_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE model_states SET status = 'production' WHERE model_pk = "
                              "(SELECT id FROM model_versions WHERE model_id = :id)"), {"id": second})
    finally:
        engine.dispose()
    assert status(registry, second) == ModelStatus.REGISTERED


def test_direct_sql_cannot_store_an_unknown_status(registry: ModelRegistry, model: Any, database_url: str) -> None:
    model_id = registry.register_model(model, metadata())
    engine = create_engine(database_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE model_states SET status = 'live' WHERE model_pk = "
                              "(SELECT id FROM model_versions WHERE model_id = :id)"), {"id": model_id})
    finally:
        engine.dispose()


# -- auto-candidate -------------------------------------------------------------------------------


def test_first_model_with_the_metric_is_a_candidate(registry: ModelRegistry, model: Any) -> None:
    assert status(registry, registry.register_model(model, metadata(ic_mean=0.01))) == ModelStatus.CANDIDATE


def test_model_without_the_metric_stays_registered(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata(performance_metrics={"ic_std": 0.2}))
    assert status(registry, model_id) == ModelStatus.REGISTERED


def test_model_beating_production_is_candidate_and_one_that_does_not_is_registered(
    registry: ModelRegistry, model: Any
) -> None:
    production = registry.register_model(model, metadata(ic_mean=0.05))
    registry.set_production_model(production)
    better = registry.register_model(model, metadata(ic_mean=0.06))
    equal = registry.register_model(model, metadata(ic_mean=0.05))
    worse = registry.register_model(model, metadata(ic_mean=0.04))
    assert status(registry, better) == ModelStatus.CANDIDATE
    assert status(registry, equal) == ModelStatus.REGISTERED
    assert status(registry, worse) == ModelStatus.REGISTERED


def test_a_model_equal_to_production_within_numerical_noise_is_not_a_candidate(
    registry: ModelRegistry, model: Any
) -> None:
    production = registry.register_model(model, metadata(ic_mean=0.0739863538))
    registry.set_production_model(production)
    rescored = registry.register_model(model, metadata(ic_mean=0.0739863682))  # the same model, another float path
    assert status(registry, rescored) == ModelStatus.REGISTERED


def test_auto_candidate_compares_with_its_own_names_production_only(registry: ModelRegistry, model: Any) -> None:
    other = registry.register_model(model, metadata("other", ic_mean=0.9))
    registry.set_production_model(other)
    assert status(registry, registry.register_model(model, metadata("mine", ic_mean=0.01))) == ModelStatus.CANDIDATE


def test_model_beats_a_production_model_that_lacks_the_metric(registry: ModelRegistry, model: Any) -> None:
    production = registry.register_model(model, metadata())
    registry.set_production_model(production)
    assert status(registry, registry.register_model(model, metadata(ic_mean=-0.5))) == ModelStatus.CANDIDATE


def test_primary_metric_and_direction_are_configurable(tmp_path: Path, database_url: str, model: Any) -> None:
    with ModelRegistry(tmp_path / "reg", database_url, primary_metric="max_drawdown", higher_is_better=False) as reg:
        production = reg.register_model(model, metadata(performance_metrics={"max_drawdown": 0.20, "ic_mean": 0.9}))
        reg.set_production_model(production)
        smaller = reg.register_model(model, metadata(performance_metrics={"max_drawdown": 0.10, "ic_mean": 0.0}))
        larger = reg.register_model(model, metadata(performance_metrics={"max_drawdown": 0.30, "ic_mean": 1.0}))
        only_ic = reg.register_model(model, metadata(ic_mean=2.0))
        assert reg.get_model_info(smaller).status == ModelStatus.CANDIDATE
        assert reg.get_model_info(larger).status == ModelStatus.REGISTERED
        assert reg.get_model_info(only_ic).status == ModelStatus.REGISTERED


# -- deletion -------------------------------------------------------------------------------------


def test_deleting_the_production_model_is_refused(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_production_model(model_id)
    with pytest.raises(ProductionModelDeletionError, match=model_id):
        registry.delete_model(model_id)
    assert registry.get_model(model_id) == model
    assert status(registry, model_id) == ModelStatus.PRODUCTION


def test_deleting_a_model_removes_its_row_and_files_but_keeps_history(registry: ModelRegistry, model: Any) -> None:
    keep = registry.register_model(model, metadata(tags={"k": "v"}, ic_mean=0.1))
    gone = registry.register_model(model, metadata(tags={"k": "v"}, ic_mean=0.2))
    registry.delete_model(gone, actor="carol", reason="bad run")
    assert [m.model_id for m in registry.list_models()] == [keep]
    assert not (registry.registry_dir / gone).exists()
    assert (registry.registry_dir / keep / "model.pkl").is_file()
    last = registry.history(model_id=gone)[-1]
    assert (last.event, last.from_status, last.to_status, last.actor, last.reason) == (
        "deleted", ModelStatus.CANDIDATE, None, "carol", "bad run")
