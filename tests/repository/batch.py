"""Shared by the local and S3 repository tests: a batch load returns what one-by-one loads return."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from registry import QlibModelRepository, RepositoryModelMetadata


async def check_batch_load(
    repo: QlibModelRepository, ids: list[str], floats_each: int, meta: Callable[[str], RepositoryModelMetadata]
) -> str:
    """Save one array model per id, load them one by one and as a batch, check both; returns the timings.

    Speed is reported, not asserted: timing targets belong in benchmarks, and a loaded 2-core CI machine
    gains little from concurrent reads of a local disk.
    """
    rng = np.random.default_rng(len(ids))
    models: dict[str, Any] = {model_id: {"id": model_id, "weights": rng.random(floats_each)} for model_id in ids}
    for model_id in ids:
        await repo.save_model(models[model_id], meta(model_id))
    started = time.perf_counter()
    one_by_one = [await repo.load_model(model_id) for model_id in ids]
    sequential_s = time.perf_counter() - started
    started = time.perf_counter()
    batch = await repo.load_models_batch(ids)
    batch_s = time.perf_counter() - started
    assert [m.model_id for _, m in batch] == ids == [m.model_id for _, m in one_by_one]
    assert all(np.array_equal(model["weights"], models[m.model_id]["weights"]) for model, m in batch)
    return f"one by one {sequential_s * 1000:.0f} ms, batch {batch_s * 1000:.0f} ms ({sequential_s / batch_s:.2f}x)"
