"""Async behaviour: the event loop keeps serving while big models move, and batch loads run concurrently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from registry import QlibModelRepository, RepositoryModelMetadata

Meta = Callable[..., RepositoryModelMetadata]
TICK_S = 0.01


class Ticker:
    """A coroutine that wakes every TICK_S and records the longest gap between its wake-ups."""

    def __init__(self) -> None:
        self.ticks = 0
        self.longest_gap = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.longest_gap = max(self.longest_gap, now - last)
            self.ticks += 1
            last = now

    def stop(self) -> None:
        self._stop.set()


@pytest.mark.slow
async def test_event_loop_keeps_ticking_while_a_large_model_is_saved_and_loaded(
    repo: QlibModelRepository, seed_metadata: Meta
) -> None:
    model = {"weights": np.random.default_rng(0).random(10_000_000)}  # 80 MB of float64
    ticker = Ticker()
    background = asyncio.create_task(ticker.run())
    started = time.perf_counter()
    await repo.save_model(model, seed_metadata("big"))
    loaded, _ = await repo.load_model("big")
    elapsed = time.perf_counter() - started
    ticker.stop()
    await background

    assert np.array_equal(loaded["weights"], model["weights"])
    print(f"\nsave+load of 80 MB took {elapsed:.2f} s; ticker woke {ticker.ticks} times, "
          f"longest gap {ticker.longest_gap * 1000:.0f} ms")
    # A blocking call would leave one gap as long as the whole save+load.
    assert ticker.longest_gap < max(0.25, elapsed / 4)
    assert ticker.ticks >= elapsed / TICK_S / 4


@pytest.mark.slow
async def test_batch_load_returns_every_model_in_order_and_beats_one_by_one(
    repo: QlibModelRepository, seed_metadata: Meta
) -> None:
    rng = np.random.default_rng(1)
    ids = [f"m{i:02d}" for i in range(16)]
    models = {model_id: {"id": model_id, "weights": rng.random(500_000)} for model_id in ids}  # 4 MB each
    for model_id in ids:
        await repo.save_model(models[model_id], seed_metadata(model_id))

    started = time.perf_counter()
    one_by_one = [await repo.load_model(model_id) for model_id in ids]
    sequential_s = time.perf_counter() - started
    started = time.perf_counter()
    batch = await repo.load_models_batch(ids)
    batch_s = time.perf_counter() - started

    assert [meta.model_id for _, meta in batch] == ids == [meta.model_id for _, meta in one_by_one]
    assert all(np.array_equal(model["weights"], models[meta.model_id]["weights"]) for model, meta in batch)
    print(f"\n{repo.registry.db.dialect}, 16 x 4 MB: one by one {sequential_s * 1000:.0f} ms, "
          f"batch {batch_s * 1000:.0f} ms ({sequential_s / batch_s:.2f}x)")
    assert batch_s < sequential_s * 1.5  # loose: a 2-core CI machine gains little on local disk
