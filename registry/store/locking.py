"""Per-name locks and version allocation: the name row is the write lock of its versions; a registration
counts itself and reads the latest version and production under it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ClauseElement,
    Select,
    bindparam,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from registry.errors import ModelNotFoundError
from registry.store.common import PRODUCTION, refuse_impossible_id, row_limit
from registry.store.db import run_pipelined
from registry.store.tables import (
    METRICS,
    NAMES,
    STATES,
    VERSIONS,
    ModelNameRow,
    ModelVersionRow,
)
from registry.versions import Version, parse_version


def lock_name(session: Session, name: str, now: datetime, *, create: bool) -> bool:
    """Lock the name's row FOR UPDATE (creating it first when asked): the per-name write lock. Returns
    whether the name exists."""
    if create:
        values = {"name": name, "registrations": 0, "created_at": now}
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(postgresql.insert(ModelNameRow).values(values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite.insert(ModelNameRow).values(values).on_conflict_do_nothing())
        elif session.get(ModelNameRow, name) is None:
            session.execute(insert(ModelNameRow).values(values))
    locked = session.scalar(select(ModelNameRow.name).where(ModelNameRow.name == name).with_for_update())
    return locked is not None


# An UPDATE locks the row and counts the registration in one cacheable statement (SQLAlchemy cannot cache
# an INSERT ... ON CONFLICT DO UPDATE); only a name's first registration creates the row first.
COUNT_REGISTRATION = (
    update(NAMES).where(NAMES.c.name == bindparam("model_name"))
    .values(registrations=NAMES.c.registrations + 1).returning(NAMES.c.highest_version)
)


def lock_name_for_registration(session: Session, name: str, now: datetime) -> Version | None:
    """Lock the name's row (creating it when new) and count the registration; returns the highest version
    the name ever had, deleted ones included."""
    row = session.execute(COUNT_REGISTRATION, {"model_name": name}).one_or_none()
    if row is None:
        lock_name(session, name, now, create=True)
        row = session.execute(COUNT_REGISTRATION, {"model_name": name}).one()
    return _version_or_none(row[0])


def _version_or_none(text: str | None) -> Version | None:
    return None if text is None else parse_version(text)


class LockedName(NamedTuple):
    """What a registration knows once it holds the name lock."""

    highest: Version | None  # the highest version the name ever had, deleted ones included
    context: RegistrationContext
    existing: str | None  # the model id the registration's flow run already registered, if any


def lock_for_registration(session: Session, name: str, now: datetime, metric: str, flow_run_id: str | None) -> LockedName:
    """Lock and count the name (creating it when new), then read the registration's context under the lock.

    On PostgreSQL the BEGIN, the lock and the reads go out in one psycopg pipeline: the server runs them in
    order, each read with its own snapshot taken once the lock is granted (so a registration that committed
    while this one waited is seen), and they cost one round trip instead of three or four.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return _lock_then_read(session, name, now, metric, flow_run_id)
    statements: list[tuple[ClauseElement, dict[str, Any]]] = [
        (COUNT_REGISTRATION, {"model_name": name}), (REGISTRATION_CONTEXT, {"name": name, "metric": metric})
    ]
    if flow_run_id is not None:
        statements.append((BY_FLOW_RUN, {"name": name, "flow_run_id": flow_run_id}))
    rows = run_pipelined(connection, statements)
    if rows[0] is None:  # the name's first registration: create its row, then as usual
        return _lock_then_read(session, name, now, metric, flow_run_id)
    existing = rows[2] if flow_run_id is not None else None
    return LockedName(_version_or_none(rows[0][0]), _context(rows[1]), existing[0] if existing else None)


def _lock_then_read(session: Session, name: str, now: datetime, metric: str, flow_run_id: str | None) -> LockedName:
    highest = lock_name_for_registration(session, name, now)
    existing = find_by_flow_run(session, name, flow_run_id) if flow_run_id is not None else None
    return LockedName(highest, registration_context(session, name, metric), existing)


def remember_highest_version(session: Session, name: str, version: str) -> None:
    """Record `version` as the name's highest ever (the caller checked that it is higher)."""
    session.execute(update(ModelNameRow).where(ModelNameRow.name == name).values(highest_version=version))


def uncount_registration(session: Session, name: str) -> None:
    """Take back the count of a registration that returned an earlier one instead."""
    session.execute(
        update(ModelNameRow).where(ModelNameRow.name == name).values(registrations=ModelNameRow.registrations - 1)
    )


class RegistrationContext(NamedTuple):
    """What a registration reads under the name lock: the latest version and production's primary metric."""

    latest: Version | None
    has_production: bool
    production_metric: float | None


def _registration_context() -> Select[Any]:
    v, p, m = VERSIONS, STATES, METRICS
    production = (p.c.model_name == bindparam("name")) & (p.c.status == PRODUCTION)
    return (
        select(
            v.c.v_major, v.c.v_minor, v.c.v_patch, v.c.v_label,
            select(p.c.model_pk).where(production).scalar_subquery().label("production_pk"),
            select(m.c.value).join(p, m.c.model_pk == p.c.model_pk).where(production, m.c.name == bindparam("metric"))
            .scalar_subquery().label("production_metric"),
        )
        .where(v.c.model_name == bindparam("name"))
        .order_by(v.c.v_major.desc(), v.c.v_minor.desc(), v.c.v_patch.desc(), v.c.v_release.desc(), v.c.v_label.desc())
        .limit(row_limit(1))
    )


REGISTRATION_CONTEXT = _registration_context()


def registration_context(session: Session, name: str, metric: str) -> RegistrationContext:
    """The latest version, whether a production model exists and its `metric`, in one statement."""
    return _context(session.execute(REGISTRATION_CONTEXT, {"name": name, "metric": metric}).one_or_none())


def _context(row: Sequence[Any] | None) -> RegistrationContext:
    if row is None:  # no version yet, hence no production either
        return RegistrationContext(None, False, None)
    return RegistrationContext(Version(row[0], row[1], row[2], row[3]), row[4] is not None, row[5])


VERSION_TAKEN = select(exists().where(
    VERSIONS.c.model_name == bindparam("name"), VERSIONS.c.v_major == bindparam("major"),
    VERSIONS.c.v_minor == bindparam("minor"), VERSIONS.c.v_patch == bindparam("patch"),
    VERSIONS.c.v_label == bindparam("label"),
))
BY_FLOW_RUN = select(VERSIONS.c.model_id).where(
    VERSIONS.c.model_name == bindparam("name"), VERSIONS.c.flow_run_id == bindparam("flow_run_id")
)


def version_taken(session: Session, name: str, version: Version) -> bool:
    """Whether `version` (compared semantically: `1.0` equals `1.0.0`) exists under `name`."""
    params = {"name": name, "major": version.major, "minor": version.minor, "patch": version.patch,
              "label": version.label}
    return bool(session.scalar(VERSION_TAKEN, params))


def find_by_flow_run(session: Session, name: str, flow_run_id: str) -> str | None:
    """The model id a flow run already registered under `name`, if any."""
    model_id: str | None = session.scalar(BY_FLOW_RUN, {"name": name, "flow_run_id": flow_run_id})
    return model_id



def lock_name_of(session: Session, model_id: str) -> str:
    """Lock the name row of `model_id`'s name FOR UPDATE and return the name (one statement)."""
    refuse_impossible_id(model_id)
    owner = select(ModelVersionRow.model_name).where(ModelVersionRow.model_id == model_id).scalar_subquery()
    name = session.scalar(select(ModelNameRow.name).where(ModelNameRow.name == owner).with_for_update())
    if name is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return name
