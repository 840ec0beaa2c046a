"""Under concurrent writers, registration and event times follow the order the rows were written in.

`production_at` and "newest first" read time and id as one order; a writer that takes its timestamp
before waiting for the name lock would break it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from registry import ModelFilter, ModelMetadata, ModelRegistry

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
WRITERS = 8


def test_created_at_and_event_times_follow_id_order_under_concurrent_writers(
    tmp_path: Path, private_postgres_url: str
) -> None:
    with ModelRegistry(tmp_path / "registry", private_postgres_url) as reg:
        barrier = threading.Barrier(WRITERS)

        def write(worker: int) -> None:
            barrier.wait()
            for n in range(15):
                model_id = reg.register_model({"w": worker, "n": n}, ModelMetadata(model_name="clock"))
                if n % 5 == 0:
                    reg.set_production_model(model_id)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        models = reg.list_models(ModelFilter(model_name="clock", descending=False))
        assert len(models) == WRITERS * 15
        created = [m.created_at for m in models]
        assert created == sorted(created), "a later row carries an earlier registration time"
        events = reg.history(model_name="clock")
        times = [e.created_at for e in events]
        assert times == sorted(times), "a later event carries an earlier time"
