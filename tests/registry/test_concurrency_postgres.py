"""Concurrent writers on PostgreSQL: no duplicate versions, exactly one production model, a complete history."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, func, select

from registry import DuplicateVersionError, ModelRegistry, ModelStatus
from registry.store.tables import ModelStateRow
from tests.registry.registry_helpers import leftover_dirs, metadata, register_many

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
T = TypeVar("T")
WRITERS = 8


@pytest.fixture
def pg_registry(postgres_url: str, tmp_path: Path) -> Iterator[ModelRegistry]:
    """A registry on the session's PostgreSQL database; tests use unique model names instead of truncating."""
    reg = ModelRegistry(tmp_path / "registry", postgres_url)
    yield reg
    reg.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def run_together(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call on its own thread, released at the same moment; re-raises the first error."""
    barrier = threading.Barrier(len(calls))

    def start(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(start, call) for call in calls]
        return [f.result() for f in futures]


def production_count(reg: ModelRegistry, name: str) -> int:
    engine = create_engine(reg.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(
                select(func.count()).where(ModelStateRow.model_name == name, ModelStateRow.status == "production")
            ) or 0)
    finally:
        engine.dispose()


def assert_distinct_versions(reg: ModelRegistry, name: str, ids: list[str], expected: int) -> None:
    assert len(ids) == expected and len(set(ids)) == expected
    infos = [m for m in reg.list_models() if m.model_name == name]
    assert len(infos) == expected
    assert len({m.version for m in infos}) == expected
    assert {m.model_id for m in infos} == set(ids)
    dirs = {p.name for p in leftover_dirs(reg)}
    assert set(ids) <= dirs and not any((reg.registry_dir / ".staging").iterdir())
    assert len([e for e in reg.history(model_name=name) if e.event == "registered"]) == expected


def test_eight_writer_threads_register_400_distinct_versions(pg_registry: ModelRegistry) -> None:
    name = unique_name("threads")

    def writer(worker: int) -> Callable[[], list[str]]:
        return lambda: [pg_registry.register_model({"w": worker, "n": n}, metadata(name)) for n in range(50)]

    ids = [i for batch in run_together([writer(w) for w in range(WRITERS)]) for i in batch]
    assert_distinct_versions(pg_registry, name, ids, 400)


def test_eight_writer_processes_register_400_distinct_versions(pg_registry: ModelRegistry) -> None:
    name = unique_name("processes")
    context = multiprocessing.get_context("spawn")
    args = [(str(pg_registry.registry_dir), pg_registry.database_url, name, 50, w) for w in range(WRITERS)]
    with context.Pool(WRITERS) as pool:
        batches = pool.starmap(register_many, args)
    ids = [i for batch in batches for i in batch]
    assert_distinct_versions(pg_registry, name, ids, 400)


def promote_in_rounds(reg: ModelRegistry, name: str, rounds: int) -> None:
    for round_no in range(rounds):
        candidates = [reg.register_model({"r": round_no, "c": c}, metadata(name)) for c in range(WRITERS)]
        results = run_together([
            (lambda mid=mid, why=f"round {round_no}": reg.set_production_model(mid, actor="promoter", reason=why))
            for mid in candidates
        ])
        assert all(r.status == ModelStatus.PRODUCTION for r in results)
        assert production_count(reg, name) == 1, f"round {round_no}"
        production = reg.get_production_model(name)
        assert production is not None and production.model_id in candidates
    events = reg.history(model_name=name)
    promoted = [e for e in events if e.event == "promoted"]
    demoted = [e for e in events if e.event == "demoted"]
    assert len(promoted) == rounds * WRITERS
    assert len(demoted) == rounds * WRITERS - 1
    assert promoted[-1].model_id == reg.get_production_model(name).model_id  # type: ignore[union-attr]
    # Each demotion names the model the promotion just before it put in production.
    last_promoted: str | None = None
    for event in events:
        if event.event == "demoted":
            assert event.model_id == last_promoted
        elif event.event == "promoted":
            last_promoted = event.model_id


def test_second_concurrent_promotion_leaves_exactly_one_production(pg_registry: ModelRegistry) -> None:
    promote_in_rounds(pg_registry, unique_name("promote"), rounds=20)


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_strict_isolation_levels_still_give_distinct_versions_and_one_production(
    postgres_url: str, tmp_path: Path, isolation: str
) -> None:
    with ModelRegistry(tmp_path / "registry", postgres_url, isolation_level=isolation) as reg:
        name = unique_name("iso")

        def writer(worker: int) -> Callable[[], list[str]]:
            return lambda: [reg.register_model({"w": worker, "n": n}, metadata(name)) for n in range(15)]

        ids = [i for batch in run_together([writer(w) for w in range(WRITERS)]) for i in batch]
        assert_distinct_versions(reg, name, ids, WRITERS * 15)
        promote_in_rounds(reg, unique_name("iso_promote"), rounds=6)


def test_concurrent_status_changes_and_deletes_keep_rows_and_history_consistent(pg_registry: ModelRegistry) -> None:
    name = unique_name("mixed")
    ids = [pg_registry.register_model({"n": n}, metadata(name)) for n in range(WRITERS * 2)]
    production = ids[0]
    pg_registry.set_production_model(production)

    def churn(model_id: str) -> Callable[[], Any]:
        def run() -> None:
            pg_registry.set_model_status(model_id, "candidate")
            pg_registry.set_model_status(model_id, "archived")
            pg_registry.delete_model(model_id)
        return run

    run_together([churn(mid) for mid in ids[1:]])
    assert [m.model_id for m in pg_registry.list_models() if m.model_name == name] == [production]
    deleted = [e for e in pg_registry.history(model_name=name) if e.event == "deleted"]
    assert len(deleted) == len(ids) - 1
    assert {p.name for p in leftover_dirs(pg_registry)} == {production}


def test_deleting_a_version_while_it_is_registered_again_never_loses_the_new_files(pg_registry: ModelRegistry) -> None:
    for round_no in range(40):
        name = unique_name("redo")
        model_id = pg_registry.register_model({"old": round_no}, metadata(name, version="1.0.0"))

        def register_again(round_no: int = round_no, name: str = name) -> str:
            while True:
                try:
                    return pg_registry.register_model({"new": round_no}, metadata(name, version="1.0.0"))
                except DuplicateVersionError:
                    continue

        run_together([lambda model_id=model_id: pg_registry.delete_model(model_id), register_again])
        assert pg_registry.get_model(model_id) == {"new": round_no}
