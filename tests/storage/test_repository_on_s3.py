"""The model repository with its artifacts in S3: round trip, and batch loads (timed, reported) against one by one."""

from __future__ import annotations

from datetime import datetime

import pytest

from registry import ModelRegistry, QlibModelRepository, RepositoryModelMetadata
from tests.repository.batch import check_batch_load


def _meta(model_id: str) -> RepositoryModelMetadata:
    return RepositoryModelMetadata(model_id=model_id, experiment_name="s3", model_type="LGBM", created_at=datetime.now())


@pytest.mark.slow
async def test_batch_load_from_s3_returns_every_model_in_order(registry: ModelRegistry) -> None:
    timings = await check_batch_load(QlibModelRepository(registry), [f"s3m{i:02d}" for i in range(16)], 250_000, _meta)
    print(f"\ns3 (moto over HTTP), 16 x 2 MB: {timings}")
