"""Reads that build ModelInfo objects, and the compiler of `ModelFilter` into cached statements."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Connection,
    Executable,
    Integer,
    Row,
    Select,
    bindparam,
    exists,
    select,
)
from sqlalchemy.orm import Session

from registry.errors import ModelNotFoundError
from registry.models import (
    ModelFilter,
    ModelInfo,
    instruments_key,
)
from registry.statuses import ModelStatus
from registry.store.common import PRODUCTION, refuse_impossible_id, row_limit, status_literal
from registry.store.db import fetch_all
from registry.store.tables import (
    SERIES,
    STATES,
    VERSIONS,
    VERSIONS_WITH_STATE,
    ModelMetricRow,
    ModelStateRow,
    ModelTagRow,
    ModelVersionRow,
    as_utc,
)

_INFO_COLUMNS = (
    "model_id", "model_name", "version", "model_type", "training_date", "metrics", "status", "artifact_sha256",
    "artifact_size", "artifact_compression", "artifact_original_size", "created_at", "updated_at",
    "experiment_name", "qlib_recorder_id", "tags", "hyperparameters", "dataset_info", "description",
    "flow_run_id", "archived_at", "purged_at", "artifact_location", "artifact_location_inferred",
)  # fmt: skip


def info_select() -> Select[Any]:
    """The columns of a version and its state that make a ModelInfo (metrics and tags included, as JSON)."""
    columns = (VERSIONS.c[name] if name in VERSIONS.c else STATES.c[name] for name in _INFO_COLUMNS)
    return select(*columns).select_from(VERSIONS_WITH_STATE)


# Built once: SQLAlchemy then reuses their cache keys and compiled forms (values are bound parameters).
INFO_BY_MODEL_ID = info_select().where(VERSIONS.c.model_id == bindparam("model_id"))
INFO_BY_PK = info_select().where(VERSIONS.c.id == bindparam("pk"))
PRODUCTION_INFO = info_select().where(
    STATES.c.model_name == bindparam("name"), STATES.c.status == PRODUCTION
)
PRODUCTION_INFOS = (
    info_select().where(STATES.c.status == PRODUCTION).order_by(STATES.c.model_name).limit(row_limit(2))
)


def read_infos(
    connection: Connection | Session, query: Executable, params: dict[str, Any] | None, root: Path | str
) -> list[ModelInfo]:
    """ModelInfo objects for the rows `query` (an `info_select`) returns, in its order.

    `root` is the artifact root: a local directory or an object-store URL such as `s3://bucket/prefix`.
    """
    base = str(root).rstrip("/")
    rows: Sequence[Any]
    if isinstance(connection, Connection) and connection.dialect.name == "postgresql":
        rows = fetch_all(connection, cast(ClauseElement, query), params or {})
    else:
        rows = connection.execute(query, params).all()  # one fetchall, not a fetch per row
    return [info_from_row(row, base) for row in rows]


def info_by_model_id(model_id: str) -> tuple[Executable, dict[str, Any]]:
    refuse_impossible_id(model_id)
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
    query = info_select()
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
    query = query.where(*state_filters(s.status, VERSIONS.c.id, statuses, n_metrics, n_tags))
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


def state_filters(
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
    are read (a page then visits as many version rows as it shows, not every row the filter passes over)."""
    state = STATES.c
    keys = select(state.model_pk, *(state[name] for name in _INFO_COLUMNS if name not in VERSIONS.c))
    keys = keys.where(*state_filters(state.status, state.model_pk, statuses, n_metrics, n_tags))
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


def info_from_row(row: Row[Any], base: str) -> ModelInfo:
    """The ModelInfo of one `info_select` row; `base` is the artifact root without a trailing slash."""
    # Unpacked in the order of _INFO_COLUMNS (cheaper than a dict of the row).
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




def artifact_checksum(session: Session, model_id: str) -> str | None:
    """The recorded sha256 of `model_id`'s artifact, or None when no row has that id."""
    return session.scalar(select(ModelVersionRow.artifact_sha256).where(ModelVersionRow.model_id == model_id))



def existing_ids(session: Session, model_ids: list[str]) -> set[str]:
    return set(session.scalars(select(ModelVersionRow.model_id).where(ModelVersionRow.model_id.in_(model_ids))))




def name_and_status(session: Session, model_id: str) -> tuple[str, str]:
    refuse_impossible_id(model_id)
    row = session.execute(
        select(ModelVersionRow.model_name, ModelStateRow.status).select_from(VERSIONS_WITH_STATE)
        .where(ModelVersionRow.model_id == model_id)
    ).one_or_none()
    if row is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return str(row[0]), str(row[1])


SERIES_BY_MODEL_IDS = (
    select(VERSIONS.c.model_id, SERIES.c.name, SERIES.c.points)
    .join_from(SERIES, VERSIONS, SERIES.c.model_pk == VERSIONS.c.id)
    .where(VERSIONS.c.model_id.in_(bindparam("model_ids", expanding=True)))
    .order_by(VERSIONS.c.model_id, SERIES.c.name)
)


def read_series(connection: Connection, model_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The stored series points of `model_ids`, as `{model_id: {series name: {"dates", "values"}}}`."""
    found: dict[str, dict[str, dict[str, Any]]] = {model_id: {} for model_id in model_ids}
    ids = [m for m in model_ids if "\x00" not in m]
    if ids:
        for model_id, name, points in connection.execute(SERIES_BY_MODEL_IDS, {"model_ids": ids}):
            found[model_id][name] = points
    return found
