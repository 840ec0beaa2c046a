"""A restarted PostgreSQL: the pool recovers and callers see no error; a long outage is a clear error, not a hang.

These tests stop the shared local server for a few seconds; each leaves it running whatever happens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from registry import ModelMetadata, ModelRegistry, RegistryUnavailableError
from tests.reliability.consistency import assert_registry_consistent, orphan_entries
from tests.reliability.postgres_server import ensure_running, pg_ctl, server_left_running

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.serial]


def metadata(name: str) -> ModelMetadata:
    return ModelMetadata(model_name=name, performance_metrics={"ic_mean": 0.02})


class Registrar(threading.Thread):
    """Registers models one after another until stopped, keeping the ids it got and any error it saw."""

    def __init__(self, reg: ModelRegistry, name: str) -> None:
        super().__init__(daemon=True)
        self.reg, self.name = reg, name
        self.ids: list[str] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.ids.append(self.reg.register_model({"n": len(self.ids)}, metadata(self.name)))
            except BaseException as exc:
                self.errors.append(exc)
                return

    def wait_for(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.ids) < count and not self.errors and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def pg_registry(tmp_path: Path, private_postgres_url: str) -> Iterator[ModelRegistry]:
    with server_left_running(), ModelRegistry(tmp_path / "registry", private_postgres_url) as reg:
        yield reg


def test_registrations_running_through_a_postgres_restart_surface_no_error(pg_registry: ModelRegistry) -> None:
    writer = Registrar(pg_registry, "through_restart")
    writer.start()
    try:
        for _ in range(2):
            writer.wait_for(len(writer.ids) + 5)
            pg_ctl("stop")
            time.sleep(1.5)
            ensure_running()
            writer.wait_for(len(writer.ids) + 5)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.errors == []
    models = pg_registry.list_models()
    assert sorted(m.model_id for m in models) == sorted(writer.ids)
    assert len({m.version for m in models}) == len(models)
    assert_registry_consistent(pg_registry)
    assert orphan_entries(pg_registry) == set()


def test_outage_longer_than_the_retry_budget_is_a_clear_error_within_bounded_time(
    tmp_path: Path, private_postgres_url: str
) -> None:
    with server_left_running(), ModelRegistry(tmp_path / "registry", private_postgres_url, retry_budget_s=3) as reg:
        kept = reg.register_model({"n": 0}, metadata("outage"))
        pg_ctl("stop")
        try:
            for call in (lambda: reg.register_model({"n": 1}, metadata("outage")), reg.list_models,
                         lambda: reg.set_production_model(kept)):
                started = time.monotonic()
                with pytest.raises(RegistryUnavailableError, match=r"still failing|cannot reach"):
                    call()
                assert time.monotonic() - started < 15
        finally:
            ensure_running()
        assert [m.model_id for m in reg.list_models()] == [kept]
        assert_registry_consistent(reg)
        assert orphan_entries(reg) == set()


def test_server_lost_during_the_commit_leaves_no_row_without_files_and_a_clear_error(
    tmp_path: Path, private_postgres_url: str
) -> None:
    """The commit's connection dies with the server; the registry cannot tell at once whether the commit landed."""
    with server_left_running(), ModelRegistry(tmp_path / "registry", private_postgres_url, retry_budget_s=3) as reg:
        reg.register_model({"n": 0}, metadata("lost_commit"))
        armed = [True]

        def stop_server_once(_session: Session) -> None:
            if armed:
                armed.clear()
                pg_ctl("stop")

        event.listen(Session, "before_commit", stop_server_once)
        started = time.monotonic()
        try:
            with pytest.raises(RegistryUnavailableError):
                reg.register_model({"n": 1}, metadata("lost_commit"))
            elapsed = time.monotonic() - started
        finally:
            event.remove(Session, "before_commit", stop_server_once)
            ensure_running()
        assert elapsed < 20
        assert len(reg.list_models()) == 1
        assert_registry_consistent(reg)
        reg.sweep_orphans(grace_period=timedelta(0))
        assert orphan_entries(reg) == set()
        again = reg.register_model({"n": 2}, metadata("lost_commit"))
        assert reg.get_model(again) == {"n": 2}


def test_commit_that_landed_just_before_the_server_died_keeps_its_files(
    tmp_path: Path, private_postgres_url: str
) -> None:
    """The commit succeeds, then the server dies before the registry learns it: the row must keep its files."""
    with server_left_running(), ModelRegistry(tmp_path / "registry", private_postgres_url, retry_budget_s=3) as reg:
        reg.register_model({"n": 0}, metadata("landed"))
        armed = [True]

        def server_dies_after_commit(session: Session) -> None:
            if armed:
                armed.clear()
                pg_ctl("stop")
                with session.get_bind().connect() as probe:  # the connection loss surfaces to the caller
                    probe.execute(text("SELECT 1"))

        event.listen(Session, "after_commit", server_dies_after_commit)
        try:
            with pytest.raises(RegistryUnavailableError):
                reg.register_model({"n": 1}, metadata("landed"))
        finally:
            event.remove(Session, "after_commit", server_dies_after_commit)
            ensure_running()
        assert len(reg.list_models()) == 2
        assert_registry_consistent(reg)


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_server")
def test_flow_whose_register_task_hits_a_restart_completes_through_the_task_retry(
    tmp_path: Path, private_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.core import lifecycle
    from tasks.registry_steps import register_model

    # The task's registry gives up after 2 s while the server is down; the server comes back only once
    # that first attempt has failed, so it is Prefect's task retry that completes the registration.
    short_budget = ModelRegistry(tmp_path / "registry", private_postgres_url, retry_budget_s=2)
    first_attempt = short_budget.register_model

    def register_then_bring_the_server_back(*args: Any, **kwargs: Any) -> str:
        try:
            return first_attempt(*args, **kwargs)
        except RegistryUnavailableError:
            ensure_running()
            raise

    monkeypatch.setattr(short_budget, "register_model", register_then_bring_the_server_back)
    monkeypatch.setattr(lifecycle, "_registry_for", lambda *_args: short_budget)

    @flow
    def register_during_restart(name: str) -> Any:
        pg_ctl("stop")
        return register_model({"weights": [1.0]}, metadata(name))

    with server_left_running():
        state = register_during_restart("restart_flow", return_state=True)
    assert state.is_completed(), state
    info = state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    assert [r.run_count for r in runs] and max(r.run_count for r in runs) >= 2, "the task never needed its retry"
    assert [m.model_id for m in short_budget.list_models()] == [info.model_id]
    assert_registry_consistent(short_budget)
    short_budget.close()


def test_registration_on_a_pooled_connection_the_server_killed_retries_on_a_new_one(pg_registry: ModelRegistry) -> None:
    """The first round trip of a registration is the pipelined BEGIN + lock + reads (psycopg, not SQLAlchemy):
    its connection error must still invalidate the connection and be retried like any other."""
    first = pg_registry.register_model({"n": 0}, metadata("killed_connection"))
    invalidated: list[BaseException | None] = []
    event.listen(pg_registry.db.engine, "invalidate", lambda _conn, _record, exc: invalidated.append(exc))
    with pg_registry.db.read_engine.connect() as admin:
        killed = admin.execute(text(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend') t"
        )).scalar_one()
    assert killed >= 1
    second = pg_registry.register_model({"n": 1}, metadata("killed_connection"))
    assert invalidated and "terminat" in str(invalidated[0])
    assert [m.model_id for m in pg_registry.list_models()] == [second, first]
    assert pg_registry.get_model(second) == {"n": 1}
    assert_registry_consistent(pg_registry)


def test_read_on_a_pooled_connection_the_server_killed_retries_on_a_new_one(pg_registry: ModelRegistry) -> None:
    """Hot reads also go to psycopg directly; a dead pooled connection is invalidated and the read retried."""
    model_id = pg_registry.register_model({"n": 0}, metadata("killed_read"))
    pg_registry.set_production_model(model_id)
    assert pg_registry.get_production_model("killed_read") is not None  # leaves a connection in the read pool
    invalidated: list[BaseException | None] = []
    event.listen(pg_registry.db.read_engine, "invalidate", lambda _conn, _record, exc: invalidated.append(exc))
    with pg_registry.db.engine.connect() as admin:
        admin.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ))
    info = pg_registry.get_production_model("killed_read")
    assert info is not None and info.model_id == model_id
    assert invalidated and "terminat" in str(invalidated[0])
