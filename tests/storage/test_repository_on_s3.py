"""The model repository with its artifacts in S3: round trip, and batch loads measured against one by one."""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import pytest

from registry import ModelRegistry, QlibModelRepository, RepositoryModelMetadata


def _meta(model_id: str) -> RepositoryModelMetadata:
    return RepositoryModelMetadata(model_id=model_id, experiment_name="s3", model_type="LGBM", created_at=datetime.now())


@pytest.mark.slow
async def test_batch_load_from_s3_is_faster_than_one_by_one(registry: ModelRegistry) -> None:
    repo = QlibModelRepository(registry)
    rng = np.random.default_rng(2)
    ids = [f"s3m{i:02d}" for i in range(16)]
    models = {model_id: {"weights": rng.random(250_000)} for model_id in ids}  # 2 MB each
    for model_id in ids:
        await repo.save_model(models[model_id], _meta(model_id))

    started = time.perf_counter()
    one_by_one = [await repo.load_model(model_id) for model_id in ids]
    sequential_s = time.perf_counter() - started
    started = time.perf_counter()
    batch = await repo.load_models_batch(ids)
    batch_s = time.perf_counter() - started

    assert [m.model_id for _, m in batch] == ids == [m.model_id for _, m in one_by_one]
    assert all(np.array_equal(model["weights"], models[m.model_id]["weights"]) for model, m in batch)
    print(f"\ns3 (moto over HTTP), 16 x 2 MB: one by one {sequential_s * 1000:.0f} ms, "
          f"batch {batch_s * 1000:.0f} ms ({sequential_s / batch_s:.2f}x)")
    assert batch_s < sequential_s
