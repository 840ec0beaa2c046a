"""Migration 0004 on a database that already holds models: metrics and tags are copied into model_versions."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from registry import ModelFilter, ModelRegistry
from registry.store.db import Database
from tests.registry.registry_helpers import metadata

# Values whose shortest text needs all 17 digits, tiny and huge ones, and an integral one.
METRICS = {"ic_mean": 0.1 + 0.2, "icir": 1 / 3, "tiny": 5e-324, "huge": 1.7976931348623157e308, "days": 250.0}


def test_upgrading_from_0003_copies_metrics_and_tags_bit_for_bit(tmp_path: Path, database_url: str) -> None:
    with ModelRegistry(tmp_path / "reg", database_url) as reg:
        rich = reg.register_model({"w": 1}, metadata(performance_metrics=METRICS, tags={"source": "retrain", "k": "v"}))
        bare = reg.register_model({"w": 2}, metadata(performance_metrics={}, tags={}))
    old = Database(database_url)
    command.downgrade(old.alembic_config(), "0003")
    assert "metrics" not in {c["name"] for c in inspect(old.engine).get_columns("model_versions")}
    old.dispose()

    with ModelRegistry(tmp_path / "reg", database_url) as reg:  # migrates on first use
        info = reg.get_model_info(rich)
        assert info.performance_metrics == METRICS
        assert all(type(v) is float for v in info.performance_metrics.values())
        assert info.tags == {"source": "retrain", "k": "v"}
        empty = reg.get_model_info(bare)
        assert (empty.performance_metrics, empty.tags) == ({}, {})
        found = reg.list_models(ModelFilter(min_performance={"icir": 0.3}, tags={"k": "v"}))
        assert [m.model_id for m in found] == [rich]
        assert found[0].performance_metrics == METRICS
