"""Migration 0002 on a database that already holds models: sizes and dataset columns are backfilled."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from registry import DatasetConfig, ModelFilter, ModelRegistry
from registry.store.db import Database
from tests.registry.registry_helpers import metadata


def test_upgrading_from_0001_backfills_original_size_and_dataset_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with ModelRegistry(tmp_path / "reg", url) as reg:
        model_id = reg.register_model({"w": 1}, metadata(dataset_info=DatasetConfig(
            instruments="csi300", start_time="2010-01-01", end_time="2016-12-31", handler="Alpha158")))
        size = reg.get_model_info(model_id).size_bytes
    old = Database(url)
    command.downgrade(old.alembic_config(), "0001")
    with old.engine.connect() as conn:
        assert "dataset_handler" not in {row[1] for row in conn.execute(text("PRAGMA table_info(model_versions)"))}
    old.dispose()

    with ModelRegistry(tmp_path / "reg", url) as reg:  # migrates on first use
        info = reg.get_model_info(model_id)
        assert (info.compression, info.original_size, info.size_bytes) == (None, size, size)
        assert reg.get_model(model_id) == {"w": 1}
        assert [m.model_id for m in reg.list_models(ModelFilter(dataset_handler="Alpha158", dataset_instruments="csi300",
                                                               dataset_start_from="2010-01-01"))] == [model_id]
