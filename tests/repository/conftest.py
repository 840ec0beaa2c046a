"""Fixtures for the model repository tests: the original API's adapter over the backend-parametrized registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from registry import ModelRegistry, QlibModelRepository, RepositoryModelMetadata


@pytest.fixture
def repo(registry: ModelRegistry) -> QlibModelRepository:
    """A QlibModelRepository sharing the test's registry (SQLite or PostgreSQL)."""
    return QlibModelRepository(registry)


@pytest.fixture
def seed_metadata() -> Callable[..., RepositoryModelMetadata]:
    """Metadata in the original API's shape: `seed_metadata("test_001", model_type="MLP", IC=0.05)`."""

    def make(model_id: str, *, experiment_name: str = "test_exp", model_type: str = "LGBM",
             hyperparameters: dict[str, Any] | None = None, **metrics: float) -> RepositoryModelMetadata:
        return RepositoryModelMetadata(
            model_id=model_id, experiment_name=experiment_name, model_type=model_type,
            hyperparameters=hyperparameters or {}, metrics=metrics, created_at=datetime.now(),
        )

    return make
