"""The schema comes from the Alembic migrations shipped in the package, applied on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from registry import ModelRegistry
from registry.store.db import Database
from tests.registry.registry_helpers import metadata


def test_new_sqlite_database_is_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert not Database(url).schema_is_current()
    with ModelRegistry(tmp_path / "reg", url) as reg:
        assert reg.db.schema_is_current()
        tables = set(inspect(reg.db.engine).get_table_names())
    assert {"alembic_version", "model_names", "model_versions", "model_states", "model_metrics", "model_tags", "model_events"} <= tables


def test_opening_a_second_registry_on_the_same_database_works(
    registry: ModelRegistry, database_url: str, tmp_path: Path, model: Any
) -> None:
    model_id = registry.register_model(model, metadata())
    with ModelRegistry(registry.registry_dir, database_url) as second:
        assert second.db.schema_is_current()
        assert second.get_model(model_id) == model
    assert registry.db.schema_is_current()


def test_partial_unique_index_for_production_exists(registry: ModelRegistry) -> None:
    indexes = {ix["name"]: ix for ix in inspect(registry.db.engine).get_indexes("model_states")}
    assert indexes["uq_model_states_one_production"]["unique"]


def test_migrations_build_exactly_the_schema_the_tables_declare(registry: ModelRegistry) -> None:
    """Columns, constraints and (partial) indexes of registry/store/tables.py match what the migrations created."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from registry.store.tables import Base

    with registry.db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
