"""Migration 0006 on a database that already holds models: status and its times move to model_states."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from registry import ModelFilter, ModelRegistry
from registry.statuses import ModelStatus
from registry.store.db import Database
from tests.registry.registry_helpers import metadata

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _states(reg: ModelRegistry, ids: list[str]) -> dict[str, tuple[object, ...]]:
    infos = {i.model_id: i for i in reg.list_models() if i.model_id in ids}
    return {m: (infos[m].status, infos[m].updated_at, infos[m].archived_at, infos[m].purged_at) for m in ids}


def test_upgrading_from_0005_keeps_every_status_and_its_times(tmp_path: Path, database_url: str) -> None:
    with ModelRegistry(tmp_path / "reg", database_url) as reg:
        old, prod, purged, waiting = (reg.register_model({"w": i}, metadata(ic_mean=0.01 * (i + 1),
                                                                            training_date="2023-01-01"))
                                      for i in range(4))
        fresh = reg.register_model({"w": 9}, metadata(ic_mean=0.5, training_date="2024-05-30"))
        reg.set_production_model(prod)
        reg.record_event(waiting, "approval_requested", awaiting_approval=True)
        reg.archive_stale(max_age_days=30, keep_last=1, now=NOW)
        reg.archive_stale(max_age_days=30, keep_last=1, purge_archived_after_days=0, now=NOW.replace(hour=1))
        ids = [old, prod, purged, waiting, fresh]
        before = _states(reg, ids)
        history_before = reg.history(model_name="lgbm_alpha158")
    assert before[prod][0] == ModelStatus.PRODUCTION and before[purged][3] is not None

    db = Database(database_url)
    command.downgrade(db.alembic_config(), "0005")
    assert "model_states" not in inspect(db.engine).get_table_names()
    assert "status" in {c["name"] for c in inspect(db.engine).get_columns("model_versions")}
    db.dispose()
    with ModelRegistry(tmp_path / "reg", database_url) as reg:  # migrates on first use
        assert _states(reg, ids) == before
        assert reg.history(model_name="lgbm_alpha158") == history_before
        assert reg.get_production_model("lgbm_alpha158").model_id == prod  # type: ignore[union-attr]
        waiting_now = [i.model_id for i in reg.list_models(ModelFilter(status="candidate"))]
        assert waiting in waiting_now
        # The waiting model is still pinned by its approval request: cleanup leaves it alone.
        assert waiting not in reg.archive_stale(max_age_days=30, keep_last=0, now=NOW).archived_ids
        # The one-production guarantee still comes from the database.
        with pytest.raises(IntegrityError), reg.db.engine.begin() as conn:
            conn.execute(text("UPDATE model_states SET status = 'production' WHERE model_pk = "
                              "(SELECT id FROM model_versions WHERE model_id = :id)"), {"id": fresh})
    migrated = Database(database_url)
    assert "status" not in {c["name"] for c in inspect(migrated.engine).get_columns("model_versions")}
    migrated.dispose()
