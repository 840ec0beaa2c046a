"""SQL for the registry: every function takes the unit of work's session; rows never leave this module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from registry.errors import ModelNotFoundError
from registry.models import (
    DatasetConfig,
    ModelEvent,
    ModelFilter,
    ModelInfo,
    ModelMetadata,
    dataset_columns,
    instruments_key,
)
from registry.statuses import ModelStatus
from registry.tables import ModelEventRow, ModelMetricRow, ModelNameRow, ModelTagRow, ModelVersionRow
from registry.versions import Version


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


def touch_name(session: Session, name: str) -> None:
    """Write the name's row, so that under REPEATABLE READ / SERIALIZABLE the next lock holder whose
    snapshot predates this commit fails with a serialization error (and retries) instead of reading
    a stale production model."""
    session.execute(
        update(ModelNameRow).where(ModelNameRow.name == name).values(registrations=ModelNameRow.registrations)
    )


def latest_version(session: Session, name: str) -> Version | None:
    """The highest version registered under `name`, in semantic order."""
    row = session.execute(
        select(ModelVersionRow.v_major, ModelVersionRow.v_minor, ModelVersionRow.v_patch, ModelVersionRow.v_label)
        .where(ModelVersionRow.model_name == name)
        .order_by(
            ModelVersionRow.v_major.desc(),
            ModelVersionRow.v_minor.desc(),
            ModelVersionRow.v_patch.desc(),
            ModelVersionRow.v_release.desc(),
            ModelVersionRow.v_label.desc(),
        )
        .limit(1)
    ).one_or_none()
    return None if row is None else Version(row[0], row[1], row[2], row[3])


def version_taken(session: Session, name: str, version: Version) -> bool:
    """Whether `version` (compared semantically: `1.0` equals `1.0.0`) exists under `name`."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    ModelVersionRow.model_name == name,
                    ModelVersionRow.v_major == version.major,
                    ModelVersionRow.v_minor == version.minor,
                    ModelVersionRow.v_patch == version.patch,
                    ModelVersionRow.v_label == version.label,
                )
            )
        )
    )


def find_by_flow_run(session: Session, name: str, flow_run_id: str) -> str | None:
    """The model id a flow run already registered under `name`, if any."""
    return session.scalar(
        select(ModelVersionRow.model_id).where(
            ModelVersionRow.model_name == name, ModelVersionRow.flow_run_id == flow_run_id
        )
    )


def artifact_checksum(session: Session, model_id: str) -> str | None:
    """The recorded sha256 of `model_id`'s artifact, or None when no row has that id."""
    return session.scalar(select(ModelVersionRow.artifact_sha256).where(ModelVersionRow.model_id == model_id))


def _refuse_impossible_id(model_id: str) -> None:
    # No model id holds NUL, and PostgreSQL refuses to even compare with one: same answer on every backend.
    if "\x00" in model_id:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")


def get_row(session: Session, model_id: str, *, for_update: bool = False) -> ModelVersionRow:
    """The row of `model_id`, or ModelNotFoundError."""
    _refuse_impossible_id(model_id)
    query = select(ModelVersionRow).where(ModelVersionRow.model_id == model_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return row


def production_row(session: Session, name: str) -> ModelVersionRow | None:
    return session.scalars(
        select(ModelVersionRow).where(
            ModelVersionRow.model_name == name, ModelVersionRow.status == ModelStatus.PRODUCTION.value
        )
    ).one_or_none()


def production_rows(session: Session, limit: int) -> Sequence[ModelVersionRow]:
    return session.scalars(
        select(ModelVersionRow)
        .where(ModelVersionRow.status == ModelStatus.PRODUCTION.value)
        .order_by(ModelVersionRow.model_name)
        .limit(limit)
    ).all()


def metric_value(session: Session, model_pk: int, metric: str) -> float | None:
    return session.scalar(
        select(ModelMetricRow.value).where(ModelMetricRow.model_pk == model_pk, ModelMetricRow.name == metric)
    )


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
    flow_run_id: str | None,
    now: datetime,
    compression: str | None = None,
    original_size: int | None = None,
) -> int:
    """Insert the model row with its metrics and tags; returns the row's primary key."""
    row = ModelVersionRow(
        model_id=model_id,
        model_name=metadata.model_name,
        version=version,
        v_major=parsed.major,
        v_minor=parsed.minor,
        v_patch=parsed.patch,
        v_release=0 if parsed.label else 1,
        v_label=parsed.label,
        model_type=metadata.model_type or "unknown",
        status=status.value,
        training_date=metadata.training_date,
        experiment_name=metadata.experiment_name,
        qlib_recorder_id=metadata.qlib_recorder_id,
        flow_run_id=flow_run_id,
        description=metadata.description,
        hyperparameters=metadata.hyperparameters,
        dataset_info=metadata.dataset_info.model_dump(mode="json") if metadata.dataset_info else None,
        artifact_sha256=sha256,
        artifact_size=size,
        artifact_compression=compression,
        artifact_original_size=original_size,
        **dataset_columns(metadata.dataset_info),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    if metadata.performance_metrics:
        session.execute(
            insert(ModelMetricRow),
            [{"model_pk": row.id, "name": k, "value": v} for k, v in metadata.performance_metrics.items()],
        )
    if metadata.tags:
        session.execute(
            insert(ModelTagRow), [{"model_pk": row.id, "key": k, "value": v} for k, v in metadata.tags.items()]
        )
    return row.id


def set_status(session: Session, row: ModelVersionRow, status: ModelStatus, now: datetime) -> None:
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
    session.add(
        ModelEventRow(
            model_id=model_id,
            model_name=model_name,
            event=event,
            from_status=from_status,
            to_status=to_status,
            actor=spec.actor,
            reason=spec.reason,
            flow_run_id=spec.flow_run_id,
            created_at=now,
        )
    )


def delete_row(session: Session, row: ModelVersionRow) -> None:
    # Explicit child deletes: SQLite only cascades with foreign_keys=ON, which other tools may not set.
    session.execute(delete(ModelMetricRow).where(ModelMetricRow.model_pk == row.id))
    session.execute(delete(ModelTagRow).where(ModelTagRow.model_pk == row.id))
    session.delete(row)


def filter_query(flt: ModelFilter) -> Select[tuple[ModelVersionRow]]:
    """The SELECT for `list_models`; every value is a bound parameter."""
    v = ModelVersionRow
    query = select(v)
    if flt.model_name is not None:
        query = query.where(v.model_name == flt.model_name)
    if flt.model_type is not None:
        query = query.where(v.model_type == flt.model_type)
    if statuses := flt.statuses():
        query = query.where(v.status.in_([s.value for s in statuses]))
    if flt.experiment_name is not None:
        query = query.where(v.experiment_name == flt.experiment_name)
    if flt.date_from is not None:
        query = query.where(v.training_date >= flt.date_from)
    if flt.date_to is not None:
        query = query.where(v.training_date <= flt.date_to)
    if flt.dataset_instruments is not None:
        query = query.where(v.dataset_instruments == instruments_key(flt.dataset_instruments))
    if flt.dataset_handler is not None:
        query = query.where(v.dataset_handler == flt.dataset_handler)
    if flt.dataset_start_from is not None:
        query = query.where(v.dataset_start >= flt.dataset_start_from)
    if flt.dataset_end_to is not None:
        query = query.where(v.dataset_end <= flt.dataset_end_to)
    for name, minimum in (flt.min_performance or {}).items():
        query = query.where(
            exists().where(ModelMetricRow.model_pk == v.id, ModelMetricRow.name == name, ModelMetricRow.value >= minimum)
        )
    for key, value in (flt.tags or {}).items():
        query = query.where(exists().where(ModelTagRow.model_pk == v.id, ModelTagRow.key == key, ModelTagRow.value == value))
    order: list[Any]
    if flt.order_by == "version":
        order = [v.model_name, v.v_major, v.v_minor, v.v_patch, v.v_release, v.v_label]
    elif flt.order_by == "model_name":
        order = [v.model_name, v.id]
    elif flt.order_by == "training_date":
        order = [v.training_date, v.id]
    else:
        order = [v.id]  # ids grow with registration time
    query = query.order_by(*[(c.desc() if flt.descending else c.asc()) for c in order])
    if flt.limit is not None:
        query = query.limit(flt.limit)
    if flt.offset:
        query = query.offset(flt.offset)
    return query


def to_infos(session: Session, rows: Sequence[ModelVersionRow], root: Path | str) -> list[ModelInfo]:
    """Plain ModelInfo objects for `rows`, with metrics and tags fetched in two queries.

    `root` is the artifact root: a local directory or an object-store URL such as `s3://bucket/prefix`.
    """
    if not rows:
        return []
    pks = [row.id for row in rows]
    metrics: dict[int, dict[str, float]] = {pk: {} for pk in pks}
    tags: dict[int, dict[str, str]] = {pk: {} for pk in pks}
    for pk, name, value in session.execute(
        select(ModelMetricRow.model_pk, ModelMetricRow.name, ModelMetricRow.value).where(ModelMetricRow.model_pk.in_(pks))
    ):
        metrics[pk][name] = value
    for pk, key, value in session.execute(
        select(ModelTagRow.model_pk, ModelTagRow.key, ModelTagRow.value).where(ModelTagRow.model_pk.in_(pks))
    ):
        tags[pk][key] = value
    return [_info(row, metrics[row.id], tags[row.id], root) for row in rows]


def _info(row: ModelVersionRow, metrics: dict[str, float], tags: dict[str, str], root: Path | str) -> ModelInfo:
    model_dir = f"{str(root).rstrip('/')}/{row.model_id}"
    return ModelInfo(
        model_id=row.model_id,
        model_name=row.model_name,
        version=row.version,
        model_type=row.model_type,
        training_date=row.training_date,
        performance_metrics=metrics,
        status=ModelStatus(row.status),
        model_path=f"{model_dir}/model.pkl",
        metadata_path=f"{model_dir}/metadata.json",
        checksum=row.artifact_sha256,
        size_bytes=row.artifact_size,
        compression=row.artifact_compression,
        original_size=row.artifact_original_size,
        created_at=row.created_at,
        updated_at=row.updated_at,
        experiment_name=row.experiment_name,
        qlib_recorder_id=row.qlib_recorder_id,
        tags=tags,
        hyperparameters=row.hyperparameters or {},
        dataset_info=DatasetConfig.model_validate(row.dataset_info) if row.dataset_info else None,
        description=row.description,
        flow_run_id=row.flow_run_id,
        archived_at=row.archived_at,
        purged_at=row.purged_at,
    )


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


def bump_registrations(session: Session, name_row: ModelNameRow) -> None:
    name_row.registrations = name_row.registrations + 1


def set_previous_production(session: Session, name: str, model_id: str | None) -> None:
    session.execute(update(ModelNameRow).where(ModelNameRow.name == name).values(previous_production_id=model_id))


def production_names(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(ModelVersionRow.model_name).where(ModelVersionRow.status == ModelStatus.PRODUCTION.value).limit(2)
        )
    )


def name_and_status(session: Session, model_id: str) -> tuple[str, str]:
    _refuse_impossible_id(model_id)
    row = session.execute(
        select(ModelVersionRow.model_name, ModelVersionRow.status).where(ModelVersionRow.model_id == model_id)
    ).one_or_none()
    if row is None:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
    return str(row[0]), str(row[1])


