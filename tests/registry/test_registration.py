"""Registering models: the seed's API, ids, stored fields, listing and filtering."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import registry as registry_pkg
from registry import DatasetConfig, ModelFilter, ModelInfo, ModelMetadata, ModelNotFoundError, ModelRegistry
from tests.conftest import TABLES
from tests.registry.registry_helpers import metadata

PUBLIC_NAMES = [
    "ModelRegistry", "ModelMetadata", "ModelInfo", "ModelFilter", "DatasetConfig", "ModelRegistryError",
    "ModelNotFoundError", "CorruptedArtifactError", "InvalidStatusError", "InvalidTransitionError",
    "ProductionModelDeletionError", "DuplicateVersionError", "InvalidNameError", "InvalidMetricError",
    "InvalidModelError", "ModelPathNotAllowedError", "AmbiguousProductionError",
]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_api_is_importable_from_registry(name: str) -> None:
    assert hasattr(registry_pkg, name)
    if name.endswith("Error") and name != "ModelRegistryError":
        assert issubclass(getattr(registry_pkg, name), registry_pkg.ModelRegistryError)


def test_seed_example_registers_and_loads_the_model(registry: ModelRegistry, model: Any) -> None:
    meta = ModelMetadata(
        model_name="lgbm_model",
        version="1.0",
        training_date="2024-01-01",
        performance_metrics={"ic_mean": 0.05, "ic_std": 0.02, "sharpe_ratio": 1.5},
        dataset_info=DatasetConfig(instruments="csi300", start_time="2020-01-01", end_time="2023-12-31",
                                   features=["close", "volume"], label="label"),
        hyperparameters={"model_type": "lgbm", "n_estimators": 100, "learning_rate": 0.1},
    )
    model_id = registry.register_model(model, meta)
    assert model_id == "lgbm_model_v1.0"
    assert registry.get_model(model_id) == model
    info = registry.list_models()[0]
    assert info.model_type == "lgbm"
    assert info.performance_metrics == {"ic_mean": 0.05, "ic_std": 0.02, "sharpe_ratio": 1.5}
    assert info.dataset_info is not None and info.dataset_info.instruments == "csi300"
    assert info.training_date == date(2024, 1, 1)


def test_registered_model_info_carries_every_field(registry: ModelRegistry, model: Any) -> None:
    before = datetime.now(UTC)
    model_id = registry.register_model(
        model,
        metadata("alpha", version="2.1.0", ic_mean=0.03, model_type="lgbm", experiment_name="exp_weekly",
                 qlib_recorder_id="abc123", tags={"universe": "csi300", "owner": "quant"},
                 hyperparameters={"num_leaves": 64}, description="weekly retrain"),
        actor="alice",
    )
    info = registry.get_model_info(model_id)
    assert isinstance(info, ModelInfo)
    assert (info.model_id, info.model_name, info.version) == ("alpha_v2.1.0", "alpha", "2.1.0")
    assert info.model_type == "lgbm"
    assert info.experiment_name == "exp_weekly" and info.qlib_recorder_id == "abc123"
    assert info.tags == {"universe": "csi300", "owner": "quant"}
    assert info.hyperparameters == {"num_leaves": 64}
    assert info.description == "weekly retrain"
    assert len(info.checksum) == 64 and info.size_bytes > 0
    assert before <= info.created_at <= datetime.now(UTC) and info.updated_at == info.created_at
    assert info.created_at.tzinfo is not None
    assert Path(info.model_path) == registry.registry_dir / model_id / "model.pkl"
    assert Path(info.metadata_path) == registry.registry_dir / model_id / "metadata.json"


def test_version_and_dataset_info_are_optional(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, ModelMetadata(model_name="bare"))
    info = registry.get_model_info(model_id)
    assert info.version == "1.0.0" and info.dataset_info is None and info.model_type == "unknown"


def test_get_model_metadata_returns_a_json_ready_dict(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata(version="1.0", ic_mean=0.02))
    meta = registry.get_model_metadata(model_id)
    assert isinstance(meta, dict)
    assert meta["model_id"] == model_id and meta["status"] == "candidate"
    assert meta["performance_metrics"] == {"ic_mean": 0.02} and meta["training_date"] == "2024-01-01"


@pytest.mark.parametrize("call", ["get_model", "get_model_metadata", "get_model_info", "delete_model"])
def test_unknown_model_id_raises_model_not_found_naming_it(registry: ModelRegistry, call: str) -> None:
    with pytest.raises(ModelNotFoundError, match=r"nope_v1\.0\.0"):
        getattr(registry, call)("nope_v1.0.0")


def test_status_change_of_unknown_model_raises_model_not_found(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.set_model_status("nope_v1.0.0", "archived")
    with pytest.raises(ModelNotFoundError):
        registry.set_production_model("nope_v1.0.0")


def test_list_models_is_newest_first_and_filters_by_name_type_status(registry: ModelRegistry, model: Any) -> None:
    a = registry.register_model(model, metadata("a", model_type="lgbm", ic_mean=0.01))
    b = registry.register_model(model, metadata("b", model_type="mlp"))
    c = registry.register_model(model, metadata("a", model_type="lgbm"))
    assert [m.model_id for m in registry.list_models()] == [c, b, a]
    assert [m.model_id for m in registry.list_models(ModelFilter(model_name="a"))] == [c, a]
    assert [m.model_id for m in registry.list_models(ModelFilter(model_type="mlp"))] == [b]
    assert [m.model_id for m in registry.list_models(ModelFilter(status="candidate"))] == [a]
    both = ModelFilter(status=["candidate", "registered"], descending=False)
    assert [m.model_id for m in registry.list_models(both)] == [a, b, c]


def test_list_models_filters_by_min_performance_dates_tags_and_experiment(registry: ModelRegistry, model: Any) -> None:
    old = registry.register_model(model, metadata("m", training_date="2022-06-01", ic_mean=0.02,
                                                   tags={"universe": "csi300"}, experiment_name="e1"))
    new = registry.register_model(model, metadata("m", training_date="2024-03-01", ic_mean=0.06,
                                                   tags={"universe": "csi500"}, experiment_name="e2"))
    no_metric = registry.register_model(model, metadata("m", training_date="2024-05-01"))

    def ids(flt: ModelFilter) -> set[str]:
        return {m.model_id for m in registry.list_models(flt)}

    assert ids(ModelFilter(min_performance={"ic_mean": 0.05})) == {new}
    assert ids(ModelFilter(min_performance={"ic_mean": 0.02})) == {old, new}
    assert ids(ModelFilter(date_to="2023-01-01")) == {old}
    assert ids(ModelFilter(date_from="2024-01-01")) == {new, no_metric}
    assert ids(ModelFilter(date_from="2024-01-01", date_to="2024-03-01")) == {new}
    assert ids(ModelFilter(tags={"universe": "csi300"})) == {old}
    assert ids(ModelFilter(tags={"universe": "hk"})) == set()
    assert ids(ModelFilter(experiment_name="e2")) == {new}


def test_list_models_pages_with_limit_and_offset(registry: ModelRegistry, model: Any) -> None:
    ids = [registry.register_model(model, metadata("p")) for _ in range(5)]
    oldest_first = ModelFilter(descending=False, limit=2)
    assert [m.model_id for m in registry.list_models(oldest_first)] == ids[:2]
    page2 = ModelFilter(descending=False, limit=2, offset=2)
    assert [m.model_id for m in registry.list_models(page2)] == ids[2:4]
    assert [m.model_id for m in registry.list_models(ModelFilter(descending=False, offset=4))] == ids[4:]


def test_filtered_pages_are_slices_of_the_whole_filtered_list(registry: ModelRegistry, model: Any) -> None:
    # Pages of name/status/metric/tag filters are found on the state, metric and tag rows first (store's
    # _page_by_state): every page must still be exactly its slice of the unpaged answer, in both orders.
    for i in range(14):
        registry.register_model(model, metadata("paged" if i % 3 else "other", ic_mean=0.01 * (i % 5),
                                                tags={"universe": "csi300" if i % 2 else "csi500"}))
    registry.set_model_status(registry.list_models(ModelFilter(model_name="paged", status="candidate"))[-1].model_id,
                              "archived")
    filters = [
        ModelFilter(model_name="paged"),
        ModelFilter(model_name="paged", status=["candidate", "registered"]),
        ModelFilter(model_name="paged", status="archived"),
        ModelFilter(model_name="paged", min_performance={"ic_mean": 0.02}),
        ModelFilter(status="candidate", tags={"universe": "csi300"}),
        ModelFilter(model_name="paged", status=["candidate", "registered"], min_performance={"ic_mean": 0.01},
                    tags={"universe": "csi500"}),
    ]
    for flt in filters:
        for descending in (True, False):
            whole = registry.list_models(flt.model_copy(update={"descending": descending}))
            assert whole, flt
            for limit, offset in ((1, 0), (2, 1), (3, 2), (100, 0), (2, len(whole))):
                page = registry.list_models(flt.model_copy(update={"descending": descending, "limit": limit,
                                                                    "offset": offset}))
                assert page == whole[offset:offset + limit], (flt, descending, limit, offset)


def test_list_models_orders_by_training_date_and_name(registry: ModelRegistry, model: Any) -> None:
    late = registry.register_model(model, metadata("b", training_date="2024-02-01"))
    early = registry.register_model(model, metadata("a", training_date="2023-02-01"))
    flt = ModelFilter(order_by="training_date", descending=False)
    assert [m.model_id for m in registry.list_models(flt)] == [early, late]
    flt = ModelFilter(order_by="model_name", descending=False)
    assert [m.model_id for m in registry.list_models(flt)] == [early, late]


def test_same_flow_run_registering_twice_returns_the_first_model(registry: ModelRegistry, model: Any) -> None:
    first = registry.register_model(model, metadata("f"), flow_run_id="run-1")
    again = registry.register_model(model, metadata("f"), flow_run_id="run-1")
    assert again == first
    assert len(registry.list_models()) == 1
    assert registry.artifacts.entries() == [registry.registry_dir / first]


def test_default_database_is_a_sqlite_file_inside_registry_dir(tmp_path: Path, model: Any) -> None:
    registry_dir = tmp_path / "default_registry"
    with ModelRegistry(registry_dir=registry_dir) as reg:
        model_id = reg.register_model(model, metadata())
        assert reg.database_url.startswith("sqlite:///")
    assert (registry_dir / "registry.db").is_file()
    with ModelRegistry(registry_dir) as reopened:
        assert reopened.get_model(model_id) == model


def test_default_registry_dir_is_model_registry_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ModelRegistry() as reg:
        assert reg.registry_dir == tmp_path / "model_registry"
    assert (tmp_path / "model_registry" / "registry.db").is_file()


@pytest.mark.parametrize(
    ("method", "positional"),
    [("register_model", ["model", "metadata", "model_path"]), ("set_model_status", ["model_id", "status"]),
     ("set_production_model", ["model_id"]), ("delete_model", ["model_id"])],
)
def test_mutating_calls_keep_the_seed_signature_and_take_actor_and_reason_by_keyword(
    method: str, positional: list[str]
) -> None:
    import inspect

    params = list(inspect.signature(getattr(ModelRegistry, method)).parameters.values())[1:]
    assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    keyword_only = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    assert {"actor", "reason"} <= keyword_only


@pytest.mark.postgres
def test_postgres_sessions_are_in_utc_and_keep_the_urls_own_options(tmp_path: Path, postgres_url: str) -> None:
    # psycopg then reads timestamps in datetime.timezone.utc itself, and as_utc has nothing to convert.
    from registry.store.tables import as_utc

    named = f"{postgres_url}?options=-c%20application_name%3Dqmp_test_app"
    with ModelRegistry(tmp_path / "reg", named) as reg:
        for engine in (reg.db.engine, reg.db.read_engine):
            with engine.connect() as conn:
                assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
                assert conn.execute(text("SHOW application_name")).scalar_one() == "qmp_test_app"
                now = conn.execute(text("SELECT now()")).scalar_one()
                raw = conn.connection.driver_connection.execute("SELECT now()").fetchone()[0]
        assert raw.tzinfo is UTC and as_utc(raw) is raw and now.tzinfo is UTC


@pytest.mark.postgres
def test_times_are_utc_whatever_the_postgres_session_time_zone(tmp_path: Path, postgres_url: str, model: Any) -> None:
    """Hot reads bypass SQLAlchemy's result types (psycopg gives timestamps in the session's zone)."""
    tokyo = f"{postgres_url}?options=-c%20TimeZone%3DAsia%2FTokyo"
    with ModelRegistry(tmp_path / "reg", tokyo) as reg:
        reg.db.run(lambda s: s.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")))
        assert reg.db.run(lambda s: s.execute(text("SHOW TimeZone")).scalar_one()) == "Asia/Tokyo"
        before = datetime.now(UTC)
        model_id = reg.register_model(model, metadata(version="1.0"))
        reg.set_production_model(model_id)
        infos = [reg.get_model_info(model_id), reg.get_production_model("lgbm_alpha158"), reg.list_models()[0]]
    with ModelRegistry(tmp_path / "reg", postgres_url) as reg:
        assert reg.get_model_info(model_id) == infos[0]
    for info in infos:
        assert info is not None and info == infos[0]
        for when in (info.created_at, info.updated_at):
            assert when.tzinfo is UTC and before <= when <= datetime.now(UTC)
