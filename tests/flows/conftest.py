"""Flow tests use the session's temporary Prefect server: the `prefect_server` fixture of tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.data.synthetic import synthesize
from tests.storage.conftest import s3_endpoint, s3_options  # noqa: F401 - the S3 test server, for settings tests


@pytest.fixture(scope="session")
def flow_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Qlib dataset shared by the flow tests."""
    return synthesize(tmp_path_factory.mktemp("flow-data") / "qlib", instruments=24, seed=5).out


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One recorder database for the session (creating MLflow's schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
