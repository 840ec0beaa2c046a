"""Constraint violations are told apart by the constraint's name, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from registry import ModelRegistry
from registry.store.constraints import violated_constraint
from registry.store.tables import STATES, VERSIONS
from tests.registry.registry_helpers import metadata


def _copy_row(registry: ModelRegistry, source_id: str, **changes: object) -> str | None:
    columns = [c for c in VERSIONS.c if c.name != "id"]
    values = [changes.get(c.name, c) for c in columns]
    statement = insert(VERSIONS).from_select([c.name for c in columns],
                                             select(*values).where(VERSIONS.c.model_id == source_id))
    with pytest.raises(IntegrityError) as caught, registry.db.engine.begin() as connection:
        connection.execute(statement)
    return violated_constraint(caught.value)


def test_each_unique_rule_is_reported_by_its_schema_name(registry: ModelRegistry) -> None:
    first = registry.register_model({"w": 1}, metadata(ic_mean=0.01))
    second = registry.register_model({"w": 2}, metadata(ic_mean=0.02))
    assert _copy_row(registry, first, v_major=VERSIONS.c.v_major + 100) == "uq_model_versions_model_id"
    assert _copy_row(registry, first, model_id=VERSIONS.c.model_id + "_copy") == "uq_model_versions_name_semver"
    registry.set_production_model(first)
    with pytest.raises(IntegrityError) as caught, registry.db.engine.begin() as connection:
        connection.execute(update(STATES).where(STATES.c.model_pk == select(VERSIONS.c.id).where(
            VERSIONS.c.model_id == second).scalar_subquery()).values(status="production"))
    assert violated_constraint(caught.value) == "uq_model_states_one_production"
