"""One temporary Prefect server for every flow test of the session (it takes about 15 s to start)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect server and database that flow runs, task runs and artifacts go to."""
    with prefect_test_harness(server_startup_timeout=60):
        yield
