"""Shared fixtures: one registry database per backend (SQLite file, real PostgreSQL) for the whole session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from registry import ModelRegistry

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

POSTGRES_ADMIN = os.environ.get("QMP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# A loaded machine (several test sessions at once) can need minutes to start a Prefect server.
PREFECT_STARTUP_S = int(os.environ.get("QMP_TEST_PREFECT_STARTUP_S", "300"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TABLES = "approvals, predictions, model_events, model_series, model_tags, model_metrics, model_states, model_versions, model_names"


@pytest.fixture(scope="session", autouse=True)
def _qmp_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests never touch the user's workspace: QMP_HOME is a temporary directory for the whole session."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("qmp_home")
        patch.setenv("QMP_HOME", str(home))
        yield home


def _postgres_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable at {POSTGRES_ADMIN}: {reason}")
    pytest.skip(f"PostgreSQL unreachable at {POSTGRES_ADMIN}: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"qmp_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _postgres_unavailable(str(exc).strip())
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server (and database) for every flow test of the session (~15 s to start).

    Flow run heartbeats are off, as in Prefect's own test suite: the engine joins their thread at the end of
    every run, and that thread sleeps in 1 s steps (up to 1 s per flow run; no test here is about them).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=PREFECT_STARTUP_S), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The registry database for one test: a new SQLite file, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url: str = request.getfixturevalue("postgres_url")
    ModelRegistry(tmp_path / "migrate", url).close()  # make sure the schema exists before truncating
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[ModelRegistry]:
    """A registry on the parametrized backend with its artifacts in a fresh directory."""
    reg = ModelRegistry(tmp_path / "registry", database_url)
    yield reg
    reg.close()
