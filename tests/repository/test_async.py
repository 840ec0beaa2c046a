"""Async behaviour: the event loop keeps serving while big models move, and batch loads run concurrently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from registry import QlibModelRepository, RepositoryModelMetadata
from tests.repository.batch import check_batch_load

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
async def test_batch_load_returns_every_model_in_order(repo: QlibModelRepository, seed_metadata: Meta) -> None:
    timings = await check_batch_load(repo, [f"m{i:02d}" for i in range(16)], 500_000, seed_metadata)  # 4 MB each
    print(f"\n{repo.registry.db.dialect}, 16 x 4 MB: {timings}")
