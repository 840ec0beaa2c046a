"""Separate processes on PostgreSQL: promotions race round after round, registrations, promotions and cleanup mix.

(8 processes x 50 registrations under one name is in tests/registry/test_concurrency_postgres.py.)
"""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path

import pytest

from registry import ModelFilter, ModelMetadata, ModelRegistry, ModelStatus
from tests.reliability.consistency import assert_registry_consistent, assert_swaps_chain
from tests.reliability.workers import BARRIER_TIMEOUT_S, mixed_worker, promote_one_per_round

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
PROCESSES = 8
ROUNDS = 50
spawn = multiprocessing.get_context("spawn")


def production_ids(reg: ModelRegistry, name: str) -> list[str]:
    return [m.model_id for m in reg.list_models(ModelFilter(model_name=name, status="production"))]


def test_eight_processes_promoting_rivals_for_50_rounds_leave_one_production_and_a_gapless_swap_chain(
    tmp_path: Path, private_postgres_url: str
) -> None:
    name = "rivals"
    with ModelRegistry(tmp_path / "registry", private_postgres_url) as reg:
        rounds = [[reg.register_model({"r": r, "w": w}, ModelMetadata(model_name=name)) for w in range(PROCESSES)]
                  for r in range(ROUNDS)]
        barrier = spawn.Barrier(PROCESSES + 1)
        errors = spawn.Queue()
        workers = [
            spawn.Process(target=promote_one_per_round, args=(
                str(reg.registry_dir), private_postgres_url, [ids[w] for ids in rounds], barrier, errors))
            for w in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        try:
            for round_no, candidates in enumerate(rounds):
                barrier.wait(BARRIER_TIMEOUT_S)  # the promoters start together ...
                barrier.wait(BARRIER_TIMEOUT_S)  # ... and have all returned
                production = production_ids(reg, name)
                assert len(production) == 1 and production[0] in candidates, f"round {round_no}: {production}"
        finally:
            for worker in workers:
                worker.join(BARRIER_TIMEOUT_S)
                if worker.is_alive():
                    worker.kill()
        surfaced = []
        while True:
            try:
                surfaced.append(errors.get(timeout=0.5))
            except queue.Empty:
                break
        assert surfaced == [] and all(w.exitcode == 0 for w in workers), "\n".join(surfaced)

        promoted = assert_swaps_chain(reg, name)
        assert len(promoted) == PROCESSES * ROUNDS
        assert sorted(promoted) == sorted(mid for ids in rounds for mid in ids)
        assert len([e for e in reg.history(model_name=name) if e.event == "demoted"]) == PROCESSES * ROUNDS - 1
        assert_registry_consistent(reg)


def test_registrations_promotions_and_cleanup_in_separate_processes_surface_no_error(
    tmp_path: Path, private_postgres_url: str
) -> None:
    names = ["mix_a", "mix_b", "mix_c"]
    registry_dir = str(tmp_path / "registry")
    with ModelRegistry(registry_dir, private_postgres_url) as reg:
        for name in names:  # something to promote and archive from the first step on
            for n in range(4):
                reg.register_model({"seed": n}, ModelMetadata(model_name=name, training_date="2024-01-01"))
    roles = ["register"] * 3 + ["promote"] * 3 + ["cleanup"] * 2
    steps = {"register": 30, "promote": 30, "cleanup": 8}
    with spawn.Pool(len(roles)) as pool:
        outcomes = pool.starmap(mixed_worker, [
            (role, seed, registry_dir, private_postgres_url, names, steps[role]) for seed, role in enumerate(roles)
        ])
    unexpected = [error for outcome in outcomes for error in outcome["unexpected"]]
    assert unexpected == [], "\n".join(unexpected)

    with ModelRegistry(registry_dir, private_postgres_url) as reg:
        models = reg.list_models()
        assert len(models) == 4 * len(names) + 3 * steps["register"]
        assert any(m.status == ModelStatus.ARCHIVED for m in models)
        assert_registry_consistent(reg)
        for name in names:
            assert len(production_ids(reg, name)) <= 1
            assert_swaps_chain(reg, name)
