"""Concurrent writers on the default SQLite database: serialized by BEGIN IMMEDIATE, no error surfaces."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from registry import ModelRegistry
from tests.registry.registry_helpers import metadata


def test_threads_with_their_own_registries_on_one_sqlite_file_register_distinct_versions(tmp_path: Path) -> None:
    def writer(worker: int) -> list[str]:
        with ModelRegistry(tmp_path / "registry") as reg:
            return [reg.register_model({"w": worker, "n": n}, metadata("shared")) for n in range(10)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [i for batch in pool.map(writer, range(4)) for i in batch]
    assert len(set(ids)) == 40
    with ModelRegistry(tmp_path / "registry") as reg:
        assert {m.model_id for m in reg.list_models()} == set(ids)
        promoted = list(pool_promote(reg, ids[:4]))
        assert sum(1 for m in reg.list_models() if m.status == "production") == 1
        assert len(promoted) == 4


def pool_promote(reg: ModelRegistry, ids: list[str]) -> list[str]:
    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        return [info.model_id for info in pool.map(reg.set_production_model, ids)]
