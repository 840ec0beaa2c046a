"""Random sequences of register / set status / promote / delete / archive_stale against an in-memory model.

After every step: the same models with the same statuses and versions, at most one production per name,
auto versions above every version the name ever had (deleted ones included), a history that ends in each model's status, and every model loadable.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from registry import (
    DuplicateVersionError,
    InvalidTransitionError,
    ModelMetadata,
    ModelNotFoundError,
    ModelRegistry,
    ModelStatus,
    ProductionModelDeletionError,
)
from registry.statuses import ALLOWED_TRANSITIONS, PROMOTABLE
from registry.versions import Version, next_version, parse_version
from tests.conftest import empty_postgres_registry
from tests.reliability.consistency import assert_registry_consistent

S = ModelStatus
NAMES = ["alpha", "beta"]
VERSIONS = [None, None, None, "1.0.0", "1.1.0", "2.0", "0.9.0-rc1"]
METRICS = [None, -0.01, 0.0, 0.02, 0.05]
NOW = datetime.now(UTC)
TODAY = NOW.date()


@dataclass
class Expected:
    model_id: str
    name: str
    version: Version
    status: ModelStatus
    ic: float | None
    trained: date
    order: int  # registration order (row ids grow with it)
    payload: dict[str, Any]


class RegistryMachine(RuleBasedStateMachine):
    """The registry under test next to a dictionary that knows what it should contain."""

    database_url: str | None = None  # None: a fresh SQLite file per example, a copy of `sqlite_template`
    sqlite_template: Path | None = None

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory(prefix="qmp_sm_")
        if self.database_url is not None:
            empty_postgres_registry(self.database_url)
        elif self.sqlite_template is not None:
            (Path(self.dir.name) / "registry").mkdir()
            shutil.copyfile(self.sqlite_template, Path(self.dir.name) / "registry" / "registry.db")
        self.reg = ModelRegistry(Path(self.dir.name) / "registry", self.database_url)
        self.models: dict[str, Expected] = {}
        self.ever: list[str] = []  # every id ever registered, deleted ones included
        self.previous_production: dict[str, str] = {}
        self.highest: dict[str, Version] = {}  # highest version each name ever had, deleted ones included
        self.counter = 0

    def teardown(self) -> None:
        self.reg.close()
        self.dir.cleanup()

    # -- helpers ----------------------------------------------------------------------------------

    def production(self, name: str) -> Expected | None:
        return next((m for m in self.models.values() if m.name == name and m.status == S.PRODUCTION), None)

    def pick(self, index: int) -> str:
        return self.ever[index % len(self.ever)]

    # -- rules ------------------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), version=st.sampled_from(VERSIONS), ic=st.sampled_from(METRICS),
          age=st.integers(0, 60))
    def register(self, name: str, version: str | None, ic: float | None, age: int) -> None:
        self.counter += 1
        payload = {"n": self.counter}
        trained = TODAY - timedelta(days=age)
        metadata = ModelMetadata(model_name=name, version=version, training_date=trained,
                                 performance_metrics={} if ic is None else {"ic_mean": ic})
        existing = [m.version for m in self.models.values() if m.name == name]
        if version is not None and parse_version(version) in existing:
            with pytest.raises(DuplicateVersionError):
                self.reg.register_model(payload, metadata)
            return
        model_id = self.reg.register_model(payload, metadata)
        ever = [*existing, *([self.highest[name]] if name in self.highest else [])]
        expected_version = version or next_version(max(ever, key=lambda v: v.sort_key) if ever else None)
        assert model_id == f"{name}_v{expected_version}"
        parsed = parse_version(expected_version)
        if version is None:
            assert all(parsed.sort_key > v.sort_key for v in ever), "auto version not above every earlier one"
        if name not in self.highest or parsed.sort_key > self.highest[name].sort_key:
            self.highest[name] = parsed
        production = self.production(name)
        beats = ic is not None and (production is None or production.ic is None or ic > production.ic)
        self.models[model_id] = Expected(model_id, name, parsed, S.CANDIDATE if beats else S.REGISTERED, ic,
                                         trained, self.counter, payload)
        self.ever.append(model_id)

    @precondition(lambda self: self.ever)
    @rule(index=st.integers(0, 10_000), status=st.sampled_from([S.REGISTERED, S.CANDIDATE, S.ARCHIVED]))
    def set_status(self, index: int, status: ModelStatus) -> None:
        target = status
        model_id = self.pick(index)
        model = self.models.get(model_id)
        if model is None:
            with pytest.raises(ModelNotFoundError):
                self.reg.set_model_status(model_id, target)
        elif model.status == target:
            self.reg.set_model_status(model_id, target)
        elif (model.status, target) not in ALLOWED_TRANSITIONS:
            with pytest.raises(InvalidTransitionError):
                self.reg.set_model_status(model_id, target)
        else:
            self.reg.set_model_status(model_id, target)
            model.status = target

    @precondition(lambda self: self.ever)
    @rule(index=st.integers(0, 10_000))
    def promote(self, index: int) -> None:
        model_id = self.pick(index)
        model = self.models.get(model_id)
        if model is None:
            with pytest.raises(ModelNotFoundError):
                self.reg.set_production_model(model_id)
        elif model.status == S.PRODUCTION:
            assert self.reg.set_production_model(model_id).status == S.PRODUCTION
        elif model.status not in PROMOTABLE:
            with pytest.raises(InvalidTransitionError):
                self.reg.set_production_model(model_id)
        else:
            old = self.production(model.name)
            assert self.reg.set_production_model(model_id).status == S.PRODUCTION
            if old is not None:
                old.status = S.CANDIDATE
                self.previous_production[model.name] = old.model_id
            model.status = S.PRODUCTION

    @precondition(lambda self: self.ever)
    @rule(index=st.integers(0, 10_000))
    def delete(self, index: int) -> None:
        model_id = self.pick(index)
        model = self.models.get(model_id)
        if model is None:
            with pytest.raises(ModelNotFoundError):
                self.reg.delete_model(model_id)
        elif model.status == S.PRODUCTION:
            with pytest.raises(ProductionModelDeletionError):
                self.reg.delete_model(model_id)
        else:
            self.reg.delete_model(model_id)
            del self.models[model_id]

    @rule(max_age_days=st.sampled_from([0, 10, 30]), keep_last=st.integers(0, 2))
    def archive_stale(self, max_age_days: int, keep_last: int) -> None:
        stale_before = (NOW - timedelta(days=max_age_days)).date()
        expected: list[str] = []
        for name in NAMES:
            unarchived = sorted((m for m in self.models.values() if m.name == name and m.status != S.ARCHIVED),
                                key=lambda m: (m.trained, m.order), reverse=True)
            for recency, m in enumerate(unarchived, start=1):
                if (m.status in (S.REGISTERED, S.CANDIDATE) and m.trained < stale_before and recency > keep_last
                        and m.model_id != self.previous_production.get(name)):
                    expected.append(m.model_id)
        result = self.reg.archive_stale(max_age_days=max_age_days, keep_last=keep_last, now=NOW)
        assert result.archived_ids == sorted(expected)
        for model_id in expected:
            self.models[model_id].status = S.ARCHIVED

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def registry_matches_the_model(self) -> None:
        actual = {m.model_id: m for m in self.reg.list_models()}
        assert set(actual) == set(self.models)
        for model_id, expected in self.models.items():
            info = actual[model_id]
            assert (info.status, parse_version(info.version)) == (expected.status, expected.version), model_id
        for name in NAMES:
            production = self.production(name)
            current = self.reg.get_production_model(name)
            assert (current.model_id if current else None) == (production.model_id if production else None)
            assert self.reg.production_at(name, datetime.now(UTC)) == (production.model_id if production else None)

    @invariant()
    def every_model_is_loadable_and_explained_by_its_history(self) -> None:
        assert_registry_consistent(self.reg)
        for model_id, expected in self.models.items():
            assert self.reg.get_model(model_id) == expected.payload


def check(machine: type[RegistryMachine], database_url: str | None, sqlite_template: Path | None = None) -> None:
    machine.database_url, machine.sqlite_template = database_url, sqlite_template
    run_state_machine_as_test(machine, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))


@pytest.mark.slow
def test_random_operation_sequences_keep_the_registry_promises_on_sqlite(sqlite_template: Path) -> None:
    class OnSqlite(RegistryMachine):
        pass

    check(OnSqlite, None, sqlite_template)


@pytest.mark.slow
@pytest.mark.postgres
def test_random_operation_sequences_keep_the_registry_promises_on_postgres(private_postgres_url: str) -> None:
    ModelRegistry(tempfile.mkdtemp(prefix="qmp_sm_migrate_"), private_postgres_url).close()

    class OnPostgres(RegistryMachine):
        pass

    check(OnPostgres, private_postgres_url)
