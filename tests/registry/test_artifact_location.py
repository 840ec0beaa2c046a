"""Each version keeps the location its artifact was written to: show, load, purge and sweep use it, not
whatever today's settings would compute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import text

from registry import ModelRegistry
from registry.store.db import Database
from tests.registry.registry_helpers import metadata


def test_a_model_is_loaded_from_where_it_was_written_after_the_artifact_root_changes(
    tmp_path: Path, database_url: str
) -> None:
    with ModelRegistry(tmp_path / "first", database_url) as reg:
        model_id = reg.register_model({"w": 1}, metadata(ic_mean=0.02))
        written = reg.get_model_info(model_id)
    assert written.artifact_location == f"{tmp_path / 'first'}/{model_id}" and not written.artifact_location_inferred

    with ModelRegistry(tmp_path / "second", database_url) as moved:
        info = moved.get_model_info(model_id)
        assert info.model_path == f"{tmp_path / 'first'}/{model_id}/model.pkl"
        assert moved.get_model(model_id) == {"w": 1}
        assert not (tmp_path / "second" / model_id).exists()
        # The sweep of today's root does not count the row as owning a directory there ...
        (tmp_path / "second" / model_id).mkdir()
        (tmp_path / "second" / model_id / "model.pkl").write_bytes(b"stray")
        swept = moved.sweep_orphans(grace_period=timedelta(0), now=datetime.now(UTC))
        assert model_id in swept.removed
        # ... and a purge deletes the file where it was written.
        moved.set_model_status(model_id, "archived")
        moved.archive_stale(max_age_days=100_000, keep_last=0, purge_archived_after_days=0,
                            now=datetime.now(UTC) + timedelta(days=1))
    assert not (tmp_path / "first" / model_id / "model.pkl").exists()
    assert (tmp_path / "first" / model_id / "metadata.json").exists()


def test_versions_from_before_0007_get_todays_location_marked_inferred(tmp_path: Path, database_url: str) -> None:
    with ModelRegistry(tmp_path / "reg", database_url) as reg:
        model_id = reg.register_model({"w": 2}, metadata(ic_mean=0.02))
    db = Database(database_url)
    command.downgrade(db.alembic_config(), "0006")
    db.upgrade(artifact_root=str(tmp_path / "reg"))
    with db.engine.connect() as connection:
        stored = connection.execute(text("SELECT artifact_location, artifact_location_inferred FROM model_versions "
                                         "WHERE model_id = :id"), {"id": model_id}).one()
    db.dispose()
    assert stored[0] == f"{tmp_path / 'reg'}/{model_id}" and bool(stored[1])
    with ModelRegistry(tmp_path / "reg", database_url) as reg:
        info = reg.get_model_info(model_id)
        assert info.artifact_location_inferred and reg.get_model(model_id) == {"w": 2}
