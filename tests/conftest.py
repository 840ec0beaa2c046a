"""Shared fixtures: one registry database per backend (SQLite file, real PostgreSQL) for the whole session."""

from __future__ import annotations

import asyncio
import atexit
import gc
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from registry import ModelRegistry
from tests import xdist_groups, xdist_terminal

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# After pytest's summary the interpreter's final garbage collections would scan every object the session made
# (the flow and Qlib tests leave very many), keeping the process alive for seconds after its result is known.
# Nothing needs collecting then; registered early, this runs after the atexit handlers registered later.
atexit.register(gc.freeze)

# Under xdist each worker ("gw0", "gw1", ...) flushes a Redis database of its own in the feature-cache tests.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER.startswith("gw") and "QMP_TEST_REDIS" not in os.environ:
    os.environ["QMP_TEST_REDIS"] = f"redis://127.0.0.1:6379/{15 - int(_XDIST_WORKER[2:]) % 16}"

POSTGRES_ADMIN = os.environ.get("QMP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# A loaded machine (several test sessions at once) can need minutes to start a Prefect server.
PREFECT_STARTUP_S = int(os.environ.get("QMP_TEST_PREFECT_STARTUP_S", "300"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Children before their parents, so that plain DELETEs in this order never trip a foreign key.
TABLES = "live_metrics, monitor_settings, data_versions, approvals, predictions, model_events, model_series, model_tags, model_metrics, model_states, model_versions, model_names"


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


# Set by the CLI itself at its edge, for the whole process, on purpose (deployments/cli/output.py, preflight.py).
CLI_PROCESS_VARIABLES = frozenset({"QMP_LOG_FILE", "QMP_QLIB_CONSOLE_LEVEL", "QMP_HINTED_LOCAL_SERVER"})


def _settings_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("QMP_") and k not in CLI_PROCESS_VARIABLES}


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_the_process_as_it_found_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """What a module must not leave behind for the later tests of its process (its xdist worker):
    - an event loop marked as running in the test thread (Playwright's sync API does while it lives): Prefect's
      sync calls would return coroutines;
    - QMP_* variables set or changed: the settings of every later test would read them (data, registry)."""
    before = _settings_variables()
    yield
    module = request.module.__name__
    assert asyncio._get_running_loop() is None, f"{module} left an event loop running in the test thread"
    after = _settings_variables()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{module} left these variables changed: {', '.join(changed)}"


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry database migrated to the newest revision once per session (per xdist worker)."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    ModelRegistry(directory).close()
    template = directory / "registry.db"
    # Closing the last connection checkpoints the write-ahead log into the file: the file alone is the database.
    assert not template.with_name("registry.db-wal").exists(), "the template kept a write-ahead log"
    return template


@pytest.fixture
def migrated_sqlite(sqlite_template: Path) -> Callable[[Path], str]:
    """Writes a copy of the migrated template at the path given and returns its URL: a fresh registry
    database, as the first `ModelRegistry` on an empty file would leave it, without running the migrations."""

    def copy_to(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"

    return copy_to


@pytest.fixture(scope="session")
def postgres_schema(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's PostgreSQL database, migrated to the newest revision once."""
    ModelRegistry(tmp_path_factory.mktemp("postgres-migrate"), postgres_url).close()
    return postgres_url


def empty_postgres_registry(url: str) -> None:
    """Delete every registry row and restart the id sequences: the schema stays, as the session migrated it."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as conn:
        for table in TABLES.split(", "):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# For a test in a suite that runs on SQLite only (tests/flows) but is kept on both backends.
ON_BOTH_BACKENDS = pytest.mark.parametrize("database_url", BACKENDS, indirect=True)


def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> str:
    """A new SQLite file (a copy of the migrated template), or the session's PostgreSQL emptied."""
    if backend == "sqlite":
        copy_to: Callable[[Path], str] = request.getfixturevalue("migrated_sqlite")
        return copy_to(tmp_path / "registry.db")
    url: str = request.getfixturevalue("postgres_schema")
    empty_postgres_registry(url)
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The registry database for one test: a new SQLite file, or the session's PostgreSQL emptied."""
    return fresh_database_url(request, tmp_path, request.param)


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[ModelRegistry]:
    """A registry on the parametrized backend with its artifacts in a fresh directory."""
    reg = ModelRegistry(tmp_path / "registry", database_url)
    yield reg
    reg.close()


# -- marks and xdist groups derived from the fixtures a test uses -------------------------------------------
# A test is as costly as the most costly fixture it uses; the marks follow from that, so `-m "not slow"`
# (`make unit`) never starts a Prefect server, trains a model or opens a browser, whoever wrote the test.
# The group keeps the tests sharing one costly fixture on one xdist worker, so it is built once per run.
COSTLY_FIXTURES: dict[str, tuple[tuple[str, ...], str]] = {
    "lightgbm": (("slow", "qlib"), "qlib-models"),
    "linear": (("slow", "qlib"), "qlib-models"),
    "shuffled": (("slow", "qlib"), "qlib-models"),
    "prefect_server": (("slow", "flows"), "prefect-server"),
    "stack": (("slow", "e2e"), "e2e-stack"),
    "browser": (("slow", "browser"), "prefect-server"),
    "chromium": (("slow", "browser"), "prefect-server"),
}
# When a test uses several, the first group listed here wins: training models costs more than starting a server.
GROUP_PRECEDENCE = ("qlib-models", "e2e-stack", "prefect-server")


def _costly_group(item: pytest.Item) -> str | None:
    """Adds the marks of the costly fixtures `item` uses; returns the xdist group they call for, if any."""
    fixtures = set(getattr(item, "fixturenames", ()))
    groups = set()
    for fixture, (marks, group) in COSTLY_FIXTURES.items():
        if fixture in fixtures:
            for mark in marks:
                item.add_marker(mark)
            groups.add(group)
    return next((group for group in GROUP_PRECEDENCE if group in groups), None)


def _module_fixture_group(item: pytest.Item) -> str | None:
    """The test's module, when the test uses a module-scoped fixture: built once, not once per worker."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    if any(defs and defs[-1].scope == "module" for defs in definitions):
        return item.nodeid.split("::")[0]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = {}
    for item in items:
        group = _costly_group(item) or _module_fixture_group(item)
        if group is not None:
            groups[item.nodeid] = group
    xdist_groups.write_groups(config, groups)


def pytest_configure(config: pytest.Config) -> None:
    xdist_terminal.adopt_terminal_environment(config)


def pytest_configure_node(node: Any) -> None:
    """xdist controller: where the starting worker writes its tests' groups, and the terminal size."""
    xdist_groups.share_groups_dir(node.config, node)
    xdist_terminal.share_terminal_environment(node)


def pytest_unconfigure(config: pytest.Config) -> None:
    xdist_groups.remove_groups_dir(config)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` schedules by the groups derived above (tests/xdist_groups.py says why)."""
    if config.getoption("dist") == "loadgroup":
        return xdist_groups.GroupScheduling(config, log)
    return None
