"""Typed ORM rows and the schema's named constraints and indexes (SQL lives here and in the store only)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
STATUSES_SQL = "'registered', 'candidate', 'production', 'archived'"
LIVE_ROWS = "status <> 'archived'"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite keeps naive UTC values; psycopg, read directly,
    gives them in the session's time zone)."""
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class ModelNameRow(Base):
    """One row per model name: the row whose lock serializes version allocation and promotion."""

    __tablename__ = "model_names"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Bumped by every registration so that, under REPEATABLE READ or SERIALIZABLE, two writers
    # of the same name conflict on this row (and retry) instead of reading a stale latest version.
    registrations: Mapped[int] = mapped_column(BigInteger, default=0)
    # The model that production was last taken from: the rollback target cleanup must keep.
    previous_production_id: Mapped[str | None] = mapped_column(String(200))
    # The highest version ever registered under the name (deleted ones included): automatic versions
    # continue after it, so a model id never names two different models over time.
    highest_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(200), unique=True)
    model_name: Mapped[str] = mapped_column(String(100), ForeignKey("model_names.name"))
    version: Mapped[str] = mapped_column(String(64))
    v_major: Mapped[int] = mapped_column(Integer)
    v_minor: Mapped[int] = mapped_column(Integer)
    v_patch: Mapped[int] = mapped_column(Integer)
    v_release: Mapped[int] = mapped_column(Integer)  # 1 for a release, 0 for a labelled pre-release
    v_label: Mapped[str] = mapped_column(String(32))
    model_type: Mapped[str] = mapped_column(String(256))
    training_date: Mapped[date] = mapped_column(Date)
    experiment_name: Mapped[str | None] = mapped_column(String(256))
    qlib_recorder_id: Mapped[str | None] = mapped_column(String(256))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    hyperparameters: Mapped[dict[str, Any]]
    # Copies of the model_metrics / model_tags rows (all written once, at registration): reads return
    # these without a join; filters and cleanup use the indexed rows.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tags: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dataset_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(BigInteger)  # stored bytes, which the sha256 covers
    artifact_compression: Mapped[str | None] = mapped_column(String(16))
    artifact_original_size: Mapped[int | None] = mapped_column(BigInteger)  # the pickle before compression
    # The model's directory as written (NULL: registered before locations were recorded, see ModelInfo).
    artifact_location: Mapped[str | None] = mapped_column(String(1024))
    artifact_location_inferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The dataset columns copy dataset_info's fields so that list_models can filter on them.
    dataset_instruments: Mapped[str | None] = mapped_column(Text)
    dataset_start: Mapped[date | None] = mapped_column(Date)
    dataset_end: Mapped[date | None] = mapped_column(Date)
    dataset_handler: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]

    __table_args__ = (
        # Also keeps version strings unique per name: equal strings are equal semantic versions.
        UniqueConstraint(
            "model_name", "v_major", "v_minor", "v_patch", "v_release", "v_label",
            name="uq_model_versions_name_semver",
        ),
        UniqueConstraint("model_name", "flow_run_id", name="uq_model_versions_name_flow_run"),
        Index("ix_model_versions_name_training_date", "model_name", "training_date"),
        Index("ix_model_versions_experiment", "experiment_name"),
        Index("ix_model_versions_dataset_handler", "dataset_handler"),
    )


class ModelStateRow(Base):
    """The mutable part of a model version, one narrow row per version: its status and the times it changed.

    A model_versions row is written once, at registration, and never updated. Status changes (archiving
    every stale model at once, say) then rewrite these small rows and their two small indexes, not the wide
    rows with their metrics, tags and hyperparameters and every unique index of model_versions.
    """

    __tablename__ = "model_states"

    model_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    model_name: Mapped[str] = mapped_column(String(100))  # the version's name (never changes), for the indexes
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    approval_requested_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(f"status IN ({STATUSES_SQL})", name="status_known"),
        # The database, not the code, guarantees a single production model per name.
        Index(
            "uq_model_states_one_production",
            "model_name",
            unique=True,
            postgresql_where=text("status = 'production'"),
            sqlite_where=text("status = 'production'"),
        ),
        # Live (not archived) rows only: archiving a row then removes it from this index's future.
        Index("ix_model_states_name_status_pk", "model_name", "status", "model_pk",
              postgresql_where=text(LIVE_ROWS), sqlite_where=text(LIVE_ROWS)),
    )


class ModelMetricRow(Base):
    """One metric value per row, so filters on any metric use an index instead of parsing JSON."""

    __tablename__ = "model_metrics"

    model_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_model_metrics_name_value", "name", "value"),)


class ModelTagRow(Base):
    __tablename__ = "model_tags"

    model_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ix_model_tags_key_value", "key", "value"),)


class ModelSeriesRow(Base):
    """A daily series of a version's evaluation (daily IC, cumulative excess return), written at registration.

    Kept in the database, not beside the model file: a purge of the file leaves the series readable.
    """

    __tablename__ = "model_series"

    model_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    points: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"dates": ["2020-01-02", ...], "values": [0.01, null, ...]}


class ModelEventRow(Base):
    """Append-only history; no foreign key so that a deleted model's history survives it."""

    __tablename__ = "model_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_model_events_name_id", "model_name", "id"),
        Index("ix_model_events_model_id_id", "model_id", "id"),
    )


APPROVAL_STATES_SQL = "'pending', 'approved', 'rejected', 'refused', 'timed_out', 'superseded'"


class ApprovalRow(Base):
    """One request for a person's approval of a model version, and its one decision.

    The decision is taken by a conditional UPDATE (`WHERE state = 'pending'`): of two concurrent answers
    exactly one changes the row, on every backend and isolation level.
    """

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(200), unique=True)  # a version is put to a person once
    model_name: Mapped[str] = mapped_column(String(100))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # What the person was shown: production at the time, both metric sets, the policy and its reasons.
    production_model_id: Mapped[str | None] = mapped_column(String(200))
    comparison: Mapped[dict[str, Any]]
    decided_by: Mapped[str | None] = mapped_column(String(256))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint(f"state IN ({APPROVAL_STATES_SQL})", name="state_known"),
        Index("ix_approvals_name_state", "model_name", "state"),
    )


# The Core tables behind the rows, typed as tables (the declarative `__table__` attribute is a FromClause).
VERSIONS = cast(Table, ModelVersionRow.__table__)
STATES = cast(Table, ModelStateRow.__table__)
# Every version with its state row (the ON clause comes from the foreign key).
VERSIONS_WITH_STATE = VERSIONS.join(STATES)
METRICS = cast(Table, ModelMetricRow.__table__)
TAGS = cast(Table, ModelTagRow.__table__)
EVENTS = cast(Table, ModelEventRow.__table__)
SERIES = cast(Table, ModelSeriesRow.__table__)
NAMES = cast(Table, ModelNameRow.__table__)


class PredictionRow(Base):
    """One score of one instrument on one trading day by one model; no foreign key, so the signals a
    deleted model produced stay readable."""

    __tablename__ = "predictions"

    model_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    trading_date: Mapped[date] = mapped_column(Date, primary_key=True)
    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float(precision=53))
    data_version: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    flow_run_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_predictions_name_date", "model_name", "trading_date"),)


PREDICTIONS = cast(Table, PredictionRow.__table__)
APPROVALS = cast(Table, ApprovalRow.__table__)


class DataVersionRow(Base):
    """One ingest into a Qlib data directory: the data version it left, what it added and what validation said."""

    __tablename__ = "data_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    data_dir: Mapped[str] = mapped_column(String(1024))
    calendar_end: Mapped[date | None] = mapped_column(Date)
    fingerprint: Mapped[str] = mapped_column(String(64))
    rows_added: Mapped[int] = mapped_column(Integer)
    days_added: Mapped[int] = mapped_column(Integer)
    corrections: Mapped[dict[str, Any]]
    validation: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_data_versions_dir_id", "data_dir", "id"),)


DATA_VERSIONS = cast(Table, DataVersionRow.__table__)


class LiveMetricRow(Base):
    """One trading day of a name's stored predictions scored against the label once it is in the data."""

    __tablename__ = "live_metrics"

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    trading_date: Mapped[date] = mapped_column(Date, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))  # the model whose stored scores these are
    ic: Mapped[float | None] = mapped_column(Float(precision=53))
    rank_ic: Mapped[float | None] = mapped_column(Float(precision=53))
    instruments: Mapped[int] = mapped_column(Integer)
    signal_return: Mapped[float | None] = mapped_column(Float(precision=53))
    top_k: Mapped[int] = mapped_column(Integer)
    data_version: Mapped[str] = mapped_column(String(128))
    computed_at: Mapped[datetime]
    flow_run_id: Mapped[str | None] = mapped_column(String(64))


class MonitorSettingsRow(Base):
    """A name's drift rule settings (absent: the default rule)."""

    __tablename__ = "monitor_settings"

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rule: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(256))


LIVE_METRICS = cast(Table, LiveMetricRow.__table__)
MONITOR_SETTINGS = cast(Table, MonitorSettingsRow.__table__)
