"""Fixtures for the registry tests (the backend-parametrized `registry` fixture lives in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def model() -> dict[str, Any]:
    """A small picklable stand-in for a trained model."""
    return {"weights": [0.1, 0.2, 0.3], "kind": "linear"}
