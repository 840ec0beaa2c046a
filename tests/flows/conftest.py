"""Flow tests use the session's temporary Prefect server: the `prefect_server` fixture of tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.data.synthetic import synthesize
from tests.conftest import fresh_database_url
from tests.storage.conftest import s3_endpoint, s3_options  # noqa: F401 - the S3 test server, for settings tests


@pytest.fixture(scope="session")
def flow_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Qlib dataset shared by the flow tests."""
    return synthesize(tmp_path_factory.mktemp("flow-data") / "qlib", instruments=24, seed=5).out


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One recorder database for the session (creating MLflow's schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The flows do the same registry calls on either backend, which tests/registry, tests/storage and
    tests/reliability check on both: here SQLite, and PostgreSQL too for the one test per flow file marked
    `ON_BOTH_BACKENDS` (tests/conftest.py)."""
    return fresh_database_url(request, tmp_path, request.param)
