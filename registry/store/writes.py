"""Writes under the name lock: a registration's rows, status changes, the production swap, deletion.
Every function takes the unit of work's session and returns plain values, never ORM rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Connection,
    Executable,
    Float,
    Select,
    String,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from registry.errors import ModelNotFoundError
from registry.models import (
    ModelMetadata,
    dataset_columns,
)
from registry.statuses import EventKind, ModelStatus
from registry.store.common import PRODUCTION, EventSpec, refuse_impossible_id
from registry.store.db import fetch_all
from registry.store.locking import remember_highest_version
from registry.store.tables import (
    EVENTS,
    METRICS,
    NAMES,
    SERIES,
    STATES,
    TAGS,
    VERSIONS,
    VERSIONS_WITH_STATE,
    ModelEventRow,
    ModelNameRow,
    ModelVersionRow,
)
from registry.versions import Version

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
    values = _version_values(model_id, metadata, version, parsed, spec, now)
    values.update(artifact_sha256=sha256, artifact_size=size, artifact_compression=compression,
                  artifact_original_size=original_size, artifact_location=location, artifact_location_inferred=False)
    state = {"model_name": metadata.model_name, "status": status.value, "updated_at": now}
    event = event_values(model_id, metadata.model_name, EventKind.REGISTERED, None, status.value, spec, now)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _insert_in_one_statement(connection, metadata, values, state, event, highest_version)
    return _insert_row_by_row(session, connection, metadata, values, state, event, highest_version)


def _version_values(
    model_id: str, metadata: ModelMetadata, version: str, parsed: Version, spec: EventSpec, now: datetime
) -> dict[str, Any]:
    """The model_versions columns that come from the metadata and the version (the artifact's are added)."""
    return dict(
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
        **dataset_columns(metadata.dataset_info),
        created_at=now,
    )


def _insert_in_one_statement(
    connection: Connection, metadata: ModelMetadata, values: dict[str, Any], state: dict[str, Any], event: dict[str, Any],
    highest_version: str | None,
) -> int:
    """PostgreSQL: REGISTER_PG on the psycopg connection directly (past SQLAlchemy's per-execution work), the
    JSON columns serialized as SQLAlchemy's JSON type would (json.dumps, None as JSON null), times aware."""
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


def _insert_row_by_row(
    session: Session, connection: Connection, metadata: ModelMetadata, values: dict[str, Any],
    state: dict[str, Any], event: dict[str, Any], highest_version: str | None,
) -> int:
    """Other databases: the version, state, metric, tag and event rows one statement each."""
    pk: int = connection.execute(insert(VERSIONS).values(values).returning(ModelVersionRow.id)).scalar_one()
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


def set_status(session: Session, pk: int, status: ModelStatus, now: datetime) -> None:
    """Move a version to `status` (the caller checked the transition); archiving stamps the time."""
    session.execute(update(STATES).where(STATES.c.model_pk == pk).values(
        status=status.value, updated_at=now, approval_requested_at=None,
        archived_at=now if status == ModelStatus.ARCHIVED else None))


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
    session.execute(insert(ModelEventRow).values(event_values(model_id, model_name, event, from_status, to_status, spec, now)))


def event_values(
    model_id: str, model_name: str, event: str, from_status: str | None, to_status: str | None, spec: EventSpec,
    now: datetime,
) -> dict[str, Any]:
    return {
        "model_id": model_id, "model_name": model_name, "event": str(event), "from_status": from_status,
        "to_status": to_status, "actor": spec.actor, "reason": spec.reason, "flow_run_id": spec.flow_run_id,
        "created_at": now,
    }




@dataclass(frozen=True)
class VersionState:
    """A version's key, name and status as one unit of work reads them (plain values, not rows)."""

    pk: int
    model_id: str
    model_name: str
    status: str
    purged_at: datetime | None = None


def get_state(session: Session, model_id: str, *, for_update: bool = False) -> VersionState:
    """The state (status and its times) of `model_id`, or ModelNotFoundError."""
    refuse_impossible_id(model_id)
    s = STATES.c
    query = select(s.model_pk, VERSIONS.c.model_id, s.model_name, s.status, s.purged_at).select_from(
        VERSIONS_WITH_STATE).where(VERSIONS.c.model_id == model_id)
    if for_update:
        query = query.with_for_update(of=STATES)
    row = session.execute(query).one_or_none()
    if row is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return VersionState(int(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4])


def set_awaiting_approval(session: Session, pk: int, awaiting: bool, now: datetime) -> None:
    """Mark (or unmark) a version as waiting for an approval decision (cleanup then leaves it alone)."""
    session.execute(update(STATES).where(STATES.c.model_pk == pk).values(approval_requested_at=now if awaiting else None))




# -- promotion: the swap in a handful of statements -------------------------------------------------------


class PromotionRows(NamedTuple):
    """The model to promote and the current production model of its name (None when there is none)."""

    target: VersionState
    production: VersionState | None


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
    rows = [VersionState(int(r.id), str(r.model_id), name, str(r.status), r.purged_at)
            for r in session.execute(PROMOTION_ROWS, {"name": name, "model_id": model_id})]
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
        session.execute(update(s).where(s.c.model_pk == old.pk).values(
            status=ModelStatus.CANDIDATE.value, updated_at=now, approval_requested_at=None, archived_at=None))
        history.append(event_values(old.model_id, name, EventKind.DEMOTED, ModelStatus.PRODUCTION.value,
                              ModelStatus.CANDIDATE.value, spec, now))
    session.execute(update(s).where(s.c.model_pk == target.pk).values(
        status=ModelStatus.PRODUCTION.value, updated_at=now, approval_requested_at=None, archived_at=None))
    history.append(event_values(target.model_id, name, event, target.status, ModelStatus.PRODUCTION.value, spec, now))
    session.execute(insert(ModelEventRow), history)


def delete_row(session: Session, pk: int) -> None:
    """Delete a version with its state, metric and tag rows (its history stays)."""
    # Explicit child deletes: SQLite only cascades with foreign_keys=ON, which other tools may not set.
    for child in (METRICS, TAGS, SERIES, STATES):
        session.execute(delete(child).where(child.c.model_pk == pk))
    session.execute(delete(VERSIONS).where(VERSIONS.c.id == pk))




def insert_series(session: Session, model_pk: int, series: dict[str, Any]) -> None:
    """Store a version's evaluation series (`name -> EvaluationSeries`) in the registration's transaction."""
    if series:
        session.execute(insert(SERIES), [{"model_pk": model_pk, "name": name, "points": value.points()}
                                         for name, value in series.items()])


def set_previous_production(session: Session, name: str, model_id: str | None) -> None:
    session.execute(update(ModelNameRow).where(ModelNameRow.name == name).values(previous_production_id=model_id))
