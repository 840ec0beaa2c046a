"""SQL for the registry: functions take the unit of work's session (or, for single-statement reads, a Core
connection); rows never leave this module."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    JSON,
    ClauseElement,
    ColumnElement,
    Connection,
    Executable,
    Float,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from registry.db import fetch_all, run_pipelined
from registry.errors import ModelNotFoundError
from registry.models import (
    ModelEvent,
    ModelFilter,
    ModelInfo,
    ModelMetadata,
    dataset_columns,
    instruments_key,
)
from registry.statuses import ModelStatus
from registry.tables import (
    EVENTS,
    METRICS,
    NAMES,
    STATES,
    TAGS,
    VERSIONS,
    VERSIONS_WITH_STATE,
    ModelEventRow,
    ModelMetricRow,
    ModelNameRow,
    ModelStateRow,
    ModelTagRow,
    ModelVersionRow,
    as_utc,
)
from registry.versions import Version, parse_version


def row_limit(n: int) -> ColumnElement[int]:
    """A LIMIT written into the SQL text: PostgreSQL costs a generic plan with a bound LIMIT as if it returned
    a tenth of the table, keeps planning every execution instead, and planning costs more than the query."""
    return literal_column(str(int(n)), Integer)


def status_literal(status: ModelStatus) -> ColumnElement[str]:
    """A status written into the SQL text instead of bound: PostgreSQL can then serve a prepared statement
    from its cached generic plan through the partial indexes whose predicates name a status (with a bound
    value it must plan every execution again, which costs more than running the query)."""
    return literal_column(f"'{ModelStatus(status).value}'", String)


PRODUCTION = status_literal(ModelStatus.PRODUCTION)


@dataclass(frozen=True)
class EventSpec:
    """Who did a change and why, recorded with it."""

    actor: str
    reason: str | None
    flow_run_id: str | None


def lock_name(session: Session, name: str, now: datetime, *, create: bool) -> ModelNameRow | None:
    """Lock the name's row FOR UPDATE (creating it first when asked): the per-name write lock."""
    if create:
        values = {"name": name, "registrations": 0, "created_at": now}
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(postgresql.insert(ModelNameRow).values(values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite.insert(ModelNameRow).values(values).on_conflict_do_nothing())
        elif session.get(ModelNameRow, name) is None:
            session.execute(insert(ModelNameRow).values(values))
    return session.scalars(
        select(ModelNameRow).where(ModelNameRow.name == name).with_for_update()
    ).one_or_none()


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


def artifact_checksum(session: Session, model_id: str) -> str | None:
    """The recorded sha256 of `model_id`'s artifact, or None when no row has that id."""
    return session.scalar(select(ModelVersionRow.artifact_sha256).where(ModelVersionRow.model_id == model_id))


def _refuse_impossible_id(model_id: str) -> None:
    # No model id holds NUL, and PostgreSQL refuses to even compare with one: same answer on every backend.
    if "\x00" in model_id:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")


def get_state(session: Session, model_id: str, *, for_update: bool = False) -> ModelStateRow:
    """The state row (status and its times) of `model_id`, or ModelNotFoundError."""
    _refuse_impossible_id(model_id)
    query = select(ModelStateRow).select_from(VERSIONS_WITH_STATE).where(ModelVersionRow.model_id == model_id)
    if for_update:
        query = query.with_for_update(of=ModelStateRow)
    row = session.scalars(query).one_or_none()
    if row is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return row


# What a registration writes: every column of the version row but its key, and the state's first values.
_REGISTERED_COLUMNS = tuple(c.name for c in VERSIONS.c if c.name != "id")
_STATE_COLUMNS = ("model_name", "status", "updated_at")


def _registration_statement() -> Select[Any]:
    """PostgreSQL: the version row, its metric and tag rows, its history and the name's highest version in
    one statement (data-modifying CTEs), so a registration costs one round trip after its reads."""
    v, m, t, e, n = VERSIONS, METRICS, TAGS, EVENTS, NAMES
    new = insert(v).values({c: bindparam(f"new_{c}", type_=v.c[c].type) for c in _REGISTERED_COLUMNS}).returning(v.c.id).cte("new")
    new_state = insert(STATES).from_select(
        ["model_pk", *_STATE_COLUMNS],
        select(new.c.id, *(bindparam(f"state_{c}", type_=STATES.c[c].type) for c in _STATE_COLUMNS)),
    ).cte("new_state")
    metrics = func.unnest(bindparam("metric_names", type_=postgresql.ARRAY(String)),
                          bindparam("metric_values", type_=postgresql.ARRAY(Float))).table_valued("name", "value").render_derived()
    tags = func.unnest(bindparam("tag_keys", type_=postgresql.ARRAY(String)),
                       bindparam("tag_values", type_=postgresql.ARRAY(String))).table_valued("key", "value").render_derived()
    new_metrics = insert(m).from_select(["model_pk", "name", "value"],
                                        select(new.c.id, metrics.c.name, metrics.c.value)
                                        .join_from(new, metrics, true())).cte("new_metrics")
    new_tags = insert(t).from_select(["model_pk", "key", "value"], select(new.c.id, tags.c.key, tags.c.value).join_from(new, tags, true())).cte("new_tags")
    event_columns = ("model_id", "model_name", "event", "from_status", "to_status", "actor", "reason", "flow_run_id",
                     "created_at")
    history = insert(e).values({c: bindparam(f"event_{c}", type_=e.c[c].type) for c in event_columns}).cte("history")
    highest = update(n).where(n.c.name == bindparam("event_model_name")).values(highest_version=func.coalesce(
        bindparam("new_highest_version", type_=n.c.highest_version.type), n.c.highest_version)).cte("highest")
    return select(new.c.id).add_cte(new_state, new_metrics, new_tags, history, highest)


REGISTER_PG = _registration_statement()
_JSON_COLUMNS = tuple(c.name for c in VERSIONS.c if isinstance(c.type, JSON))


def insert_model(
    session: Session,
    *,
    model_id: str,
    metadata: ModelMetadata,
    version: str,
    parsed: Version,
    status: ModelStatus,
    sha256: str,
    size: int,
    spec: EventSpec,
    highest_version: str | None,
    now: datetime,
    location: str,
    compression: str | None = None,
    original_size: int | None = None,
) -> int:
    """Insert the model row, its metrics and tags and its `registered` event, and remember the name's
    highest version; returns the row's primary key."""
    values = dict(
        model_id=model_id,
        model_name=metadata.model_name,
        version=version,
        v_major=parsed.major,
        v_minor=parsed.minor,
        v_patch=parsed.patch,
        v_release=0 if parsed.label else 1,
        v_label=parsed.label,
        model_type=metadata.model_type or "unknown",
        training_date=metadata.training_date,
        experiment_name=metadata.experiment_name,
        qlib_recorder_id=metadata.qlib_recorder_id,
        flow_run_id=spec.flow_run_id,
        description=metadata.description,
        hyperparameters=metadata.hyperparameters,
        metrics=metadata.performance_metrics,
        tags=metadata.tags,
        dataset_info=metadata.dataset_info.model_dump(mode="json") if metadata.dataset_info else None,
        artifact_sha256=sha256,
        artifact_size=size,
        artifact_compression=compression,
        artifact_original_size=original_size,
        artifact_location=location,
        artifact_location_inferred=False,
        **dataset_columns(metadata.dataset_info),
        created_at=now,
    )
    state = {"model_name": metadata.model_name, "status": status.value, "updated_at": now}
    event = _event(model_id, metadata.model_name, "registered", None, status.value, spec, now)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # On the psycopg connection directly (about 1 ms less than through SQLAlchemy's execution here): the
        # JSON columns serialized as SQLAlchemy's JSON type would (json.dumps, None as JSON null), times aware.
        for column in _JSON_COLUMNS:
            values[column] = json.dumps(values[column])
        params = {
            **{f"new_{k}": x for k, x in values.items()}, **{f"event_{k}": x for k, x in event.items()},
            **{f"state_{k}": x for k, x in state.items()},
            "new_highest_version": highest_version,
            "metric_names": list(metadata.performance_metrics), "metric_values": list(metadata.performance_metrics.values()),
            "tag_keys": list(metadata.tags), "tag_values": list(metadata.tags.values()),
        }
        pk: int = fetch_all(connection, REGISTER_PG, params)[0][0]
        return pk
    pk = connection.execute(insert(VERSIONS).values(values).returning(ModelVersionRow.id)).scalar_one()
    connection.execute(insert(STATES).values(model_pk=pk, **state))
    if metadata.performance_metrics:
        connection.execute(insert(METRICS),
                           [{"model_pk": pk, "name": k, "value": x} for k, x in metadata.performance_metrics.items()])
    if metadata.tags:
        connection.execute(insert(TAGS),
                           [{"model_pk": pk, "key": k, "value": x} for k, x in metadata.tags.items()])
    connection.execute(insert(EVENTS).values(event))
    if highest_version is not None:
        remember_highest_version(session, metadata.model_name, highest_version)
    return pk


def set_status(session: Session, row: ModelStateRow, status: ModelStatus, now: datetime) -> None:
    row.status = status.value
    row.updated_at = now
    row.approval_requested_at = None
    if status == ModelStatus.ARCHIVED:
        row.archived_at = now
    elif row.archived_at is not None:
        row.archived_at = None


def add_event(
    session: Session,
    *,
    model_id: str,
    model_name: str,
    event: str,
    from_status: str | None,
    to_status: str | None,
    spec: EventSpec,
    now: datetime,
) -> None:
    session.execute(insert(ModelEventRow).values(_event(model_id, model_name, event, from_status, to_status, spec, now)))


def _event(
    model_id: str, model_name: str, event: str, from_status: str | None, to_status: str | None, spec: EventSpec,
    now: datetime,
) -> dict[str, Any]:
    return {
        "model_id": model_id, "model_name": model_name, "event": event, "from_status": from_status,
        "to_status": to_status, "actor": spec.actor, "reason": spec.reason, "flow_run_id": spec.flow_run_id,
        "created_at": now,
    }


# -- promotion: the swap in a handful of statements -------------------------------------------------------


class PromotionRows(NamedTuple):
    """The model to promote and the current production model of its name (None when there is none)."""

    target: Row[Any]
    production: Row[Any] | None


def lock_name_of(session: Session, model_id: str) -> str:
    """Lock the name row of `model_id`'s name FOR UPDATE and return the name (one statement)."""
    _refuse_impossible_id(model_id)
    owner = select(ModelVersionRow.model_name).where(ModelVersionRow.model_id == model_id).scalar_subquery()
    name = session.scalar(select(ModelNameRow.name).where(ModelNameRow.name == owner).with_for_update())
    if name is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return name


def _promotion_rows() -> Executable:
    # Two indexed lookups (the target by its id, production by the partial unique index), one round trip.
    v, s = VERSIONS, STATES
    columns = (s.c.model_pk.label("id"), v.c.model_id, s.c.status, s.c.purged_at)
    return union_all(
        select(*columns).select_from(VERSIONS_WITH_STATE).where(v.c.model_name == bindparam("name"),
                                                                v.c.model_id == bindparam("model_id")),
        select(*columns).select_from(VERSIONS_WITH_STATE).where(s.c.model_name == bindparam("name"),
                                                                s.c.status == PRODUCTION),
    )


PROMOTION_ROWS = _promotion_rows()


def promotion_rows(session: Session, name: str, model_id: str) -> PromotionRows:
    """Read the model to promote and the name's production model together (after taking the name lock)."""
    rows = session.execute(PROMOTION_ROWS, {"name": name, "model_id": model_id}).all()
    target = next((r for r in rows if r.model_id == model_id), None)
    if target is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    production = next((r for r in rows if r.status == ModelStatus.PRODUCTION.value and r.model_id != model_id), None)
    return PromotionRows(target, production)


def swap_production(
    session: Session, name: str, rows: PromotionRows, *, event: str, spec: EventSpec, now: datetime
) -> None:
    """Demote the old production model, promote the target, remember the rollback target, write the history."""
    s, target, old = STATES, rows.target, rows.production
    # Always write the name row: under REPEATABLE READ / SERIALIZABLE the next lock holder whose snapshot
    # predates this commit then fails with a serialization error (and retries) instead of reading a stale
    # production model.
    remembered = {"previous_production_id": old.model_id} if old is not None else {"registrations": ModelNameRow.registrations}
    session.execute(update(ModelNameRow).where(ModelNameRow.name == name).values(remembered))
    history = []
    if old is not None:
        # The partial unique index is checked row by row: demote before promoting, in two statements.
        session.execute(update(s).where(s.c.model_pk == old.id).values(
            status=ModelStatus.CANDIDATE.value, updated_at=now, approval_requested_at=None, archived_at=None))
        history.append(_event(old.model_id, name, "demoted", ModelStatus.PRODUCTION.value,
                              ModelStatus.CANDIDATE.value, spec, now))
    session.execute(update(s).where(s.c.model_pk == target.id).values(
        status=ModelStatus.PRODUCTION.value, updated_at=now, approval_requested_at=None, archived_at=None))
    history.append(_event(target.model_id, name, event, target.status, ModelStatus.PRODUCTION.value, spec, now))
    session.execute(insert(ModelEventRow), history)


def delete_row(session: Session, state: ModelStateRow) -> None:
    """Delete a version with its state, metric and tag rows (its history stays)."""
    # Explicit child deletes: SQLite only cascades with foreign_keys=ON, which other tools may not set.
    pk = state.model_pk
    session.expunge(state)
    for child in (METRICS, TAGS, STATES):
        session.execute(delete(child).where(child.c.model_pk == pk))
    session.execute(delete(VERSIONS).where(VERSIONS.c.id == pk))


# The columns a ModelInfo is built from (fewer columns, less for the driver to describe and convert).
_INFO_COLUMNS = (
    "model_id", "model_name", "version", "model_type", "training_date", "metrics", "status", "artifact_sha256",
    "artifact_size", "artifact_compression", "artifact_original_size", "created_at", "updated_at",
    "experiment_name", "qlib_recorder_id", "tags", "hyperparameters", "dataset_info", "description",
    "flow_run_id", "archived_at", "purged_at", "artifact_location", "artifact_location_inferred",
)  # fmt: skip


def _info_select() -> Select[Any]:
    """The columns of a version and its state that make a ModelInfo (metrics and tags included, as JSON)."""
    columns = (VERSIONS.c[name] if name in VERSIONS.c else STATES.c[name] for name in _INFO_COLUMNS)
    return select(*columns).select_from(VERSIONS_WITH_STATE)


# Built once: SQLAlchemy then reuses their cache keys and compiled forms (values are bound parameters).
INFO_BY_MODEL_ID = _info_select().where(VERSIONS.c.model_id == bindparam("model_id"))
INFO_BY_PK = _info_select().where(VERSIONS.c.id == bindparam("pk"))
PRODUCTION_INFO = _info_select().where(
    STATES.c.model_name == bindparam("name"), STATES.c.status == PRODUCTION
)
PRODUCTION_INFOS = (
    _info_select().where(STATES.c.status == PRODUCTION).order_by(STATES.c.model_name).limit(row_limit(2))
)


def read_infos(
    connection: Connection | Session, query: Executable, params: dict[str, Any] | None, root: Path | str
) -> list[ModelInfo]:
    """ModelInfo objects for the rows `query` (an `_info_select`) returns, in its order.

    `root` is the artifact root: a local directory or an object-store URL such as `s3://bucket/prefix`.
    """
    base = str(root).rstrip("/")
    rows: Sequence[Any]
    if isinstance(connection, Connection) and connection.dialect.name == "postgresql":
        rows = fetch_all(connection, cast(ClauseElement, query), params or {})
    else:
        rows = connection.execute(query, params).all()  # one fetchall, not a fetch per row
    return [_info(row, base) for row in rows]


def info_by_model_id(model_id: str) -> tuple[Executable, dict[str, Any]]:
    _refuse_impossible_id(model_id)
    return INFO_BY_MODEL_ID, {"model_id": model_id}


def filter_query(flt: ModelFilter) -> tuple[Executable, dict[str, Any]]:
    """The SELECT for `list_models` and its parameters; statements are cached per shape of filter."""
    statuses = [s.value for s in flt.statuses() or ()]
    metrics = list((flt.min_performance or {}).items())
    tags = list((flt.tags or {}).items())
    params: dict[str, Any] = {
        "model_name": flt.model_name, "model_type": flt.model_type, "experiment_name": flt.experiment_name,
        "date_from": flt.date_from, "date_to": flt.date_to,
        "dataset_instruments": instruments_key(flt.dataset_instruments) if flt.dataset_instruments is not None else None,
        "dataset_handler": flt.dataset_handler, "dataset_start_from": flt.dataset_start_from,
        "dataset_end_to": flt.dataset_end_to, "offset": flt.offset or None,
    }
    params = {k: v for k, v in params.items() if v is not None}
    for i, (name, minimum) in enumerate(metrics):
        params[f"metric_{i}"], params[f"metric_min_{i}"] = name, minimum
    for i, (key, value) in enumerate(tags):
        params[f"tag_{i}"], params[f"tag_value_{i}"] = key, value
    shape = (frozenset(params), tuple(statuses), len(metrics), len(tags), flt.order_by, flt.descending, flt.limit)
    return _filter_statement(*shape), params


# Filters on columns that only model_versions has (the name, status, metrics and tags are on narrower rows).
_VERSION_FILTERS = frozenset({"model_type", "experiment_name", "date_from", "date_to", "dataset_instruments",
                              "dataset_handler", "dataset_start_from", "dataset_end_to"})


@lru_cache(maxsize=256)
def _filter_statement(
    given: frozenset[str], statuses: tuple[str, ...], n_metrics: int, n_tags: int, order_by: str, descending: bool,
    limit: int | None,
) -> Select[Any]:
    if limit is not None and order_by == "created_at" and not given & _VERSION_FILTERS:
        return _page_by_state(given, statuses, n_metrics, n_tags, descending, limit)
    v, s = ModelVersionRow, STATES.c
    query = _info_select()
    if "model_name" in given:
        # The state's copy of the name too: the name/status index of model_states then serves the filter.
        query = query.where(s.model_name == bindparam("model_name"))
    equal = {"model_name": v.model_name, "model_type": v.model_type, "experiment_name": v.experiment_name,
             "dataset_instruments": v.dataset_instruments, "dataset_handler": v.dataset_handler}
    query = query.where(*[column == bindparam(key) for key, column in equal.items() if key in given])
    bounds = {"date_from": v.training_date >= bindparam("date_from"), "date_to": v.training_date <= bindparam("date_to"),
              "dataset_start_from": v.dataset_start >= bindparam("dataset_start_from"),
              "dataset_end_to": v.dataset_end <= bindparam("dataset_end_to")}
    query = query.where(*[clause for key, clause in bounds.items() if key in given])
    query = query.where(*_state_filters(s.status, VERSIONS.c.id, statuses, n_metrics, n_tags))
    order: list[Any]
    if order_by == "version":
        order = [v.model_name, v.v_major, v.v_minor, v.v_patch, v.v_release, v.v_label]
    elif order_by == "model_name":
        order = [v.model_name, v.id]
    elif order_by == "training_date":
        order = [v.training_date, v.id]
    else:
        order = [v.id]  # ids grow with registration time
    query = query.order_by(*[(c.desc() if descending else c.asc()) for c in order])
    if limit is not None:  # in the SQL text (see row_limit); the offset of later pages stays bound
        query = query.limit(row_limit(limit))
    if "offset" in given:
        query = query.offset(bindparam("offset", type_=Integer))
    return query


def _state_filters(
    status: ColumnElement[str], pk: ColumnElement[int], statuses: tuple[str, ...], n_metrics: int, n_tags: int
) -> list[ColumnElement[bool]]:
    """The status, metric and tag conditions of a filter, on the version whose primary key is `pk`."""
    m, t = ModelMetricRow, ModelTagRow
    clauses: list[ColumnElement[bool]] = []
    if statuses:  # in the SQL text (see status_literal); at most one cached statement per set of statuses
        clauses.append(status.in_([status_literal(ModelStatus(x)) for x in statuses]))
    clauses += [exists().where(m.model_pk == pk, m.name == bindparam(f"metric_{i}"), m.value >= bindparam(f"metric_min_{i}"))
                for i in range(n_metrics)]
    clauses += [exists().where(t.model_pk == pk, t.key == bindparam(f"tag_{i}"), t.value == bindparam(f"tag_value_{i}"))
                for i in range(n_tags)]
    return clauses


def _page_by_state(
    given: frozenset[str], statuses: tuple[str, ...], n_metrics: int, n_tags: int, descending: bool, limit: int
) -> Select[Any]:
    """A page, newest (or oldest) first, of a filter on name, status, metrics and tags only: its keys are
    found on the narrow state rows and their metric and tag indexes, and only the page's wide version rows
    are read (a page of 100 at 100,000 versions then visits 100 of them instead of several hundred)."""
    state = STATES.c
    keys = select(state.model_pk, *(state[name] for name in _INFO_COLUMNS if name not in VERSIONS.c))
    keys = keys.where(*_state_filters(state.status, state.model_pk, statuses, n_metrics, n_tags))
    if statuses and ModelStatus.ARCHIVED.value not in statuses:
        # Implied by the statuses, but SQLite only uses the partial live-rows index when its WHERE is spelled out.
        keys = keys.where(state.status != status_literal(ModelStatus.ARCHIVED))
    if "model_name" in given:
        keys = keys.where(state.model_name == bindparam("model_name"))
    keys = keys.order_by(state.model_pk.desc() if descending else state.model_pk.asc()).limit(row_limit(limit))
    if "offset" in given:
        keys = keys.offset(bindparam("offset", type_=Integer))
    page = keys.subquery("page")
    columns = (VERSIONS.c[name] if name in VERSIONS.c else page.c[name] for name in _INFO_COLUMNS)
    query = select(*columns).select_from(page.join(VERSIONS, VERSIONS.c.id == page.c.model_pk))
    return query.order_by(page.c.model_pk.desc() if descending else page.c.model_pk.asc())


def _info(row: Row[Any], base: str) -> ModelInfo:
    # Unpacked in the order of _INFO_COLUMNS (0.15 ms less per page of 100 than a dict of the row).
    (model_id, model_name, version, model_type, training_date, metrics, status, sha256, size, compression,
     original_size, created_at, updated_at, experiment_name, qlib_recorder_id, tags, hyperparameters,
     dataset_info, description, flow_run_id, archived_at, purged_at, location, inferred) = row
    if location is None:  # registered before locations were recorded, upgraded without a root: today's
        location, inferred = f"{base}/{model_id}", True
    model_dir = location
    # Validated by pydantic-core from the row's values: cheaper than building the model unvalidated in Python.
    return ModelInfo.model_validate({
        "model_id": model_id,
        "model_name": model_name,
        "version": version,
        "model_type": model_type,
        "training_date": training_date,
        "performance_metrics": metrics or {},
        "status": status,
        "model_path": f"{model_dir}/model.pkl",
        "metadata_path": f"{model_dir}/metadata.json",
        "artifact_location": location,
        "artifact_location_inferred": bool(inferred),
        "checksum": sha256,
        "size_bytes": size,
        "compression": compression,
        "original_size": original_size,
        "created_at": as_utc(created_at),
        "updated_at": as_utc(updated_at),
        "experiment_name": experiment_name,
        "qlib_recorder_id": qlib_recorder_id,
        "tags": tags or {},
        "hyperparameters": hyperparameters or {},
        "dataset_info": dataset_info,
        "description": description,
        "flow_run_id": flow_run_id,
        "archived_at": as_utc(archived_at),
        "purged_at": as_utc(purged_at),
    })


def events(
    session: Session, *, model_name: str | None, model_id: str | None, limit: int | None
) -> list[ModelEvent]:
    if "\x00" in (model_name or "") + (model_id or ""):
        return []  # nothing holds NUL, and PostgreSQL refuses to compare with it
    query = select(ModelEventRow)
    if model_name is not None:
        query = query.where(ModelEventRow.model_name == model_name)
    if model_id is not None:
        query = query.where(ModelEventRow.model_id == model_id)
    query = query.order_by(ModelEventRow.id)
    if limit is not None:
        query = query.order_by(None).order_by(ModelEventRow.id.desc()).limit(limit)
    rows = session.scalars(query).all()
    if limit is not None:
        rows = list(reversed(rows))
    return [
        ModelEvent(
            event_id=r.id,
            model_id=r.model_id,
            model_name=r.model_name,
            event=r.event,
            from_status=ModelStatus(r.from_status) if r.from_status else None,
            to_status=ModelStatus(r.to_status) if r.to_status else None,
            actor=r.actor,
            reason=r.reason,
            flow_run_id=r.flow_run_id,
            created_at=r.created_at,
        )
        for r in rows
    ]


def production_at(session: Session, model_name: str, when: datetime) -> str | None:
    """The model that was production for `model_name` at `when`, read from the history."""
    latest = session.execute(
        select(ModelEventRow.model_id, ModelEventRow.to_status)
        .where(
            ModelEventRow.model_name == model_name,
            ModelEventRow.created_at <= when,
            (ModelEventRow.to_status == ModelStatus.PRODUCTION.value)
            | (ModelEventRow.from_status == ModelStatus.PRODUCTION.value),
        )
        .order_by(ModelEventRow.id.desc())
        .limit(1)
    ).one_or_none()
    if latest is None or latest[1] != ModelStatus.PRODUCTION.value:
        return None
    return str(latest[0])


def previous_production_ids(session: Session, model_name: str, exclude: str | None) -> list[str]:
    """Models that were promoted under `model_name`, most recent first, excluding `exclude`."""
    query = (
        select(ModelEventRow.model_id, func.max(ModelEventRow.id).label("last"))
        .where(ModelEventRow.model_name == model_name, ModelEventRow.to_status == ModelStatus.PRODUCTION.value)
        .group_by(ModelEventRow.model_id)
        .order_by(func.max(ModelEventRow.id).desc())
    )
    return [mid for mid, _ in session.execute(query) if mid != exclude]


def existing_ids(session: Session, model_ids: list[str]) -> set[str]:
    return set(session.scalars(select(ModelVersionRow.model_id).where(ModelVersionRow.model_id.in_(model_ids))))


def set_previous_production(session: Session, name: str, model_id: str | None) -> None:
    session.execute(update(ModelNameRow).where(ModelNameRow.name == name).values(previous_production_id=model_id))


def name_and_status(session: Session, model_id: str) -> tuple[str, str]:
    _refuse_impossible_id(model_id)
    row = session.execute(
        select(ModelVersionRow.model_name, ModelStateRow.status).select_from(VERSIONS_WITH_STATE)
        .where(ModelVersionRow.model_id == model_id)
    ).one_or_none()
    if row is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return str(row[0]), str(row[1])


