"""The seed's model repository tests, in our words, against QlibModelRepository on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from registry import (
    DatasetConfig,
    IModelRepository,
    ModelFilter,
    ModelNotFoundError,
    ProductionModelDeletionError,
    QlibModelRepository,
    RepositoryModelMetadata,
)

Meta = Callable[..., RepositoryModelMetadata]


async def test_saved_model_loads_back_with_its_metadata(repo: QlibModelRepository, seed_metadata: Meta) -> None:
    model = {"type": "LGBM", "params": {"n_estimators": 100}}
    metadata = seed_metadata("test_001", hyperparameters={"n_estimators": 100}, IC=0.05)
    metadata.tags = {"dataset": "csi300", "features": "alpha158"}

    assert await repo.save_model(model, metadata) == "test_001"
    loaded, loaded_metadata = await repo.load_model("test_001")

    assert loaded == model
    assert isinstance(repo, IModelRepository)
    assert (loaded_metadata.model_id, loaded_metadata.model_type, loaded_metadata.experiment_name) == (
        "test_001", "LGBM", "test_exp")
    assert loaded_metadata.hyperparameters == {"n_estimators": 100} and loaded_metadata.metrics == {"IC": 0.05}
    assert loaded_metadata.tags == {"dataset": "csi300", "features": "alpha158"}
    assert loaded_metadata.version == "1.0.0" and loaded_metadata.registry_model_id == "test_001_v1.0.0"
    assert await repo.get_model_metadata("test_001") == loaded_metadata


async def test_the_repository_is_a_view_of_the_registry_not_a_second_store(
    repo: QlibModelRepository, seed_metadata: Meta
) -> None:
    await repo.save_model({"w": 1}, seed_metadata("lgbm_001", IC=0.05))
    [info] = repo.registry.list_models(ModelFilter(model_name="lgbm_001"))
    assert info.model_id == "lgbm_001_v1.0.0" and info.performance_metrics == {"IC": 0.05}
    assert repo.registry.get_model(info.model_id) == {"w": 1}


async def test_listing_returns_every_model_newest_first(repo: QlibModelRepository, seed_metadata: Meta) -> None:
    for i in range(3):
        await repo.save_model({}, seed_metadata(f"model_{i}"))
    listed = await repo.list_models()
    assert [m.model_id for m in listed] == ["model_2", "model_1", "model_0"]
    assert listed[0].created_at >= listed[1].created_at >= listed[2].created_at


async def test_listing_filters_by_experiment_and_model_type(repo: QlibModelRepository, seed_metadata: Meta) -> None:
    await repo.save_model({}, seed_metadata("a", experiment_name="weekly", model_type="LGBM"))
    await repo.save_model({}, seed_metadata("b", experiment_name="weekly", model_type="MLP"))
    await repo.save_model({}, seed_metadata("c", experiment_name="daily", model_type="LGBM"))
    assert [m.model_id for m in await repo.list_models(model_type="LGBM")] == ["c", "a"]
    assert [m.model_id for m in await repo.list_models(experiment_name="weekly")] == ["b", "a"]
    assert [m.model_id for m in await repo.list_models("weekly", "MLP")] == ["b"]
    assert await repo.list_models(experiment_name="nobody") == []


async def test_saving_an_id_again_adds_a_version_and_loading_returns_the_newest(
    repo: QlibModelRepository, seed_metadata: Meta
) -> None:
    await repo.save_model({"round": 1}, seed_metadata("lgbm_001", IC=0.04))
    await repo.save_model({"round": 2}, seed_metadata("lgbm_001", IC=0.06))
    model, metadata = await repo.load_model("lgbm_001")
    assert model == {"round": 2} and metadata.version == "1.1.0" and metadata.metrics == {"IC": 0.06}
    assert (await repo.load_model("lgbm_001", version="1.0.0"))[0] == {"round": 1}
    assert [m.version for m in await repo.list_models()] == ["1.1.0"]
    assert [m.version for m in await repo.list_models(all_versions=True)] == ["1.1.0", "1.0.0"]


async def test_deleted_model_is_gone_with_every_version(repo: QlibModelRepository, seed_metadata: Meta) -> None:
    await repo.save_model({}, seed_metadata("to_delete"))
    await repo.save_model({}, seed_metadata("to_delete"))
    await repo.save_model({}, seed_metadata("kept"))
    await repo.delete_model("to_delete")
    with pytest.raises(ModelNotFoundError, match="to_delete"):
        await repo.load_model("to_delete")
    assert [m.model_id for m in await repo.list_models()] == ["kept"]
    assert [e.event for e in repo.registry.history(model_name="to_delete")][-1] == "deleted"


@pytest.mark.parametrize("call", ["load_model", "get_model_metadata", "delete_model"])
async def test_missing_model_raises_model_not_found(repo: QlibModelRepository, call: str) -> None:
    with pytest.raises(ModelNotFoundError, match="nope"):
        await getattr(repo, call)("nope")


async def test_a_model_with_a_production_version_cannot_be_deleted(
    repo: QlibModelRepository, seed_metadata: Meta
) -> None:
    await repo.save_model({}, seed_metadata("prod"))
    repo.registry.set_production_model("prod_v1.0.0")
    with pytest.raises(ProductionModelDeletionError):
        await repo.delete_model("prod")
    assert (await repo.load_model("prod"))[0] == {}


async def test_dataset_configuration_is_kept_and_filterable(repo: QlibModelRepository, seed_metadata: Meta) -> None:
    def on(model_id: str, instruments: Any, start: str, end: str, handler: str) -> RepositoryModelMetadata:
        meta = seed_metadata(model_id)
        meta.dataset = DatasetConfig(instruments=instruments, start_time=start, end_time=end, handler=handler)
        return meta

    await repo.save_model({}, on("a", "csi300", "2008-01-01", "2014-12-31", "Alpha158"))
    await repo.save_model({}, on("b", "csi500", "2010-01-01", "2016-12-31", "Alpha360"))
    await repo.save_model({}, on("c", ["SH600000", "SZ000001"], "2012-01-01 09:30:00", "2018-12-31", "Alpha158"))
    assert (await repo.get_model_metadata("a")).dataset == DatasetConfig(
        instruments="csi300", start_time="2008-01-01", end_time="2014-12-31", handler="Alpha158")
    assert [m.model_id for m in await repo.list_models(dataset_handler="Alpha158")] == ["c", "a"]
    assert [m.model_id for m in await repo.list_models(dataset_instruments="csi500")] == ["b"]
    reg = repo.registry
    codes = ModelFilter(dataset_instruments=["SH600000", "SZ000001"])
    assert [m.model_name for m in reg.list_models(codes)] == ["c"]
    window = ModelFilter(dataset_start_from="2009-01-01", dataset_end_to="2017-01-01")
    assert [m.model_name for m in reg.list_models(window)] == ["b"]


async def test_the_seed_constructor_opens_a_registry_in_models_dir(tmp_path: Any, seed_metadata: Meta) -> None:
    repo = QlibModelRepository(models_dir=tmp_path / "models", db_path=tmp_path / "models.db")
    try:
        await repo.save_model([1, 2, 3], seed_metadata("seeded"))
        assert (tmp_path / "models.db").is_file() and (tmp_path / "models" / "seeded_v1.0.0" / "model.pkl").is_file()
        assert (await repo.load_model("seeded"))[0] == [1, 2, 3]
    finally:
        repo.close()


async def test_caller_created_at_comes_back_and_registration_time_has_its_own_field(repo: QlibModelRepository) -> None:
    created = datetime(2021, 3, 4, 5, 6, 7)
    metadata = RepositoryModelMetadata(model_id="dated", experiment_name="e", model_type="LGBM",
                                       hyperparameters={}, metrics={}, created_at=created, tags=None)
    await repo.save_model({}, metadata)
    loaded = await repo.get_model_metadata("dated")
    assert loaded.created_at == created
    assert loaded.tags == {}
    assert loaded.registered_at is not None and loaded.registered_at.year >= 2026
