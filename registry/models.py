"""The registry's public data: metadata in, model info and history out (plain Pydantic, never ORM rows)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticSerializationError, to_jsonable_python

from registry.errors import InvalidMetadataError, InvalidMetricError, InvalidNameError
from registry.statuses import ModelStatus, parse_status
from registry.versions import parse_version

# Checked with fullmatch: `$` would let a trailing newline through into paths and ids.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
METRIC_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .%-]{0,63}$")
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$")
MAX_TAG_VALUE = 256
MAX_TEXT = 256
# Documented rules, quoted by the errors.
NAME_RULE = "1-100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit, no '..'"
METRIC_RULE = "1-64 characters from A-Z a-z 0-9 _ space . % -, starting with a letter or '_'"
TAG_RULE = "key of 1-64 characters from A-Z a-z 0-9 _ . : -, value a string of at most 256 characters"


def validate_model_name(name: str) -> str:
    """Return `name` if it follows NAME_RULE, else raise InvalidNameError naming it."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidNameError(f"invalid model name {name!r}: {NAME_RULE}")
    return name


def validate_metric_name(name: str) -> str:
    """Return `name` if it follows METRIC_RULE, else raise InvalidNameError naming it."""
    if not isinstance(name, str) or not METRIC_PATTERN.fullmatch(name):
        raise InvalidNameError(f"invalid metric name {name!r}: {METRIC_RULE}")
    return name


def validate_tag_key(key: str) -> str:
    """Return `key` if it follows TAG_RULE, else raise InvalidNameError naming it."""
    if not isinstance(key, str) or not TAG_KEY_PATTERN.fullmatch(key):
        raise InvalidNameError(f"invalid tag key {key!r}: {TAG_RULE}")
    return key


def validate_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Metric names checked and values made finite floats; NaN/inf raise InvalidMetricError."""
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        validate_metric_name(name)
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidMetricError(f"metric {name!r} is not a number: {value!r}") from None
        if not math.isfinite(number):
            raise InvalidMetricError(
                f"metric {name!r} is {number}: metrics must be finite (leave a metric out when it could not be computed)"
            )
        clean[name] = number
    return clean


def _scalar(value: Any) -> Any:
    item = getattr(value, "item", None)  # a NumPy scalar (np.int64, np.bool_, ...) as its Python value
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    raise PydanticSerializationError(f"{type(value).__name__} is not a JSON value")


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMetadataError(f"{where} is {value}: JSON has no NaN or infinity (store it as a string)")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


def json_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` as plain JSON, stored alike on every backend: dates, paths, enums and the like as JSON
    does (strings), NumPy scalars as numbers; InvalidMetadataError naming the key for NaN, infinities
    and objects JSON cannot hold."""
    plain: dict[str, Any] = {}
    for key, value in values.items():
        try:
            plain[key] = to_jsonable_python(value, fallback=_scalar)
        except PydanticSerializationError as exc:
            raise InvalidMetadataError(f"{where}[{key!r}] cannot be stored as JSON: {exc}") from None
        _check_finite(plain[key], f"{where}[{key!r}]")
    return plain


class DatasetConfig(BaseModel):
    """What the model was trained on (the original API's fields plus the Qlib handler)."""

    model_config = ConfigDict(extra="allow")

    instruments: str | list[str] | None = None
    start_time: str | None = None
    end_time: str | None = None
    features: list[str] = Field(default_factory=list)
    label: str | None = None
    handler: str | None = None


def _day(text: str | None) -> date | None:
    """The calendar day a dataset bound starts with (`2020-01-01` or `2020-01-01 09:30:00`), if any."""
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def instruments_key(instruments: str | list[str] | None) -> str | None:
    """The instruments as one filterable string: a market name as is, a list of codes comma-joined."""
    if instruments is None:
        return None
    return instruments if isinstance(instruments, str) else ",".join(instruments)


def dataset_columns(config: DatasetConfig | None) -> dict[str, Any]:
    """The filterable columns kept for a dataset configuration (instruments, time range, handler)."""
    if config is None:
        return {"dataset_instruments": None, "dataset_start": None, "dataset_end": None, "dataset_handler": None}
    return {
        "dataset_instruments": instruments_key(config.instruments),
        "dataset_start": _day(config.start_time),
        "dataset_end": _day(config.end_time),
        "dataset_handler": config.handler,
    }


class ModelMetadata(BaseModel):
    """What a caller registers: the original API's fields plus experiment, recorder id, tags and model type."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    version: str | None = None
    training_date: date = Field(default_factory=lambda: datetime.now(UTC).date())
    performance_metrics: dict[str, float] = Field(default_factory=dict)
    dataset_info: DatasetConfig | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    model_type: str | None = None
    experiment_name: str | None = None
    qlib_recorder_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("model_name", mode="before")
    @classmethod
    def _check_name(cls, value: Any) -> Any:
        return validate_model_name(value)

    @field_validator("version", mode="before")
    @classmethod
    def _check_version(cls, value: Any) -> Any:
        if value is not None:
            parse_version(value)
        return value

    @field_validator("performance_metrics", mode="before")
    @classmethod
    def _check_metrics(cls, value: Any) -> Any:
        return validate_metrics(value) if isinstance(value, dict) else value

    # On the way in only (ModelInfo, read back from the database, holds JSON already).
    @field_validator("hyperparameters", mode="after")
    @classmethod
    def _plain_hyperparameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        return json_values(value, "hyperparameters")

    @field_validator("dataset_info", mode="after")
    @classmethod
    def _plain_dataset_extras(cls, value: DatasetConfig | None) -> DatasetConfig | None:
        if value is None or not value.__pydantic_extra__:
            return value
        plain = value.model_copy()  # the caller's DatasetConfig keeps its own values
        plain.__pydantic_extra__ = json_values(value.__pydantic_extra__, "dataset_info")
        return plain

    @field_validator("tags", mode="before")
    @classmethod
    def _check_tags(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, tag in value.items():
                validate_tag_key(key)
                if not isinstance(tag, str) or len(tag) > MAX_TAG_VALUE or "\x00" in tag:
                    raise InvalidNameError(f"invalid value for tag {key!r}: {TAG_RULE}")
        return value

    @field_validator("experiment_name", "qlib_recorder_id", "model_type", "description", mode="before")
    @classmethod
    def _check_text(cls, value: Any) -> Any:
        if isinstance(value, str) and (len(value) > MAX_TEXT or "\x00" in value):
            raise InvalidNameError(f"text field too long (max {MAX_TEXT}) or containing NUL: {value[:40]!r}...")
        return value

    @model_validator(mode="after")
    def _default_model_type(self) -> ModelMetadata:
        # The original API carries the type inside hyperparameters["model_type"].
        if self.model_type is None:
            self.model_type = str(self.hyperparameters.get("model_type", "unknown"))
        return self


class ModelInfo(BaseModel):
    """A registered model as the registry reports it (the original API's fields plus integrity and times)."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_id: str
    model_name: str
    version: str
    model_type: str
    training_date: date
    performance_metrics: dict[str, float]
    status: ModelStatus
    model_path: str
    metadata_path: str
    # The model's directory where its artifact was written (a path or an object-store URL); `inferred` when the
    # version predates recorded locations and it was derived from the settings at upgrade (or read) time.
    artifact_location: str
    artifact_location_inferred: bool = False
    checksum: str
    size_bytes: int  # the stored bytes, which the checksum covers (compressed when `compression` is set)
    created_at: datetime
    updated_at: datetime
    compression: str | None = None
    original_size: int | None = None  # the pickle's size before compression
    experiment_name: str | None = None
    qlib_recorder_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    dataset_info: DatasetConfig | None = None
    description: str | None = None
    flow_run_id: str | None = None
    archived_at: datetime | None = None
    purged_at: datetime | None = None



OrderBy = Literal["created_at", "version", "model_name", "training_date"]


class ModelFilter(BaseModel):
    """Which models `list_models` returns: the original API's fields plus name, tags, ordering and paging."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str | None = None
    model_type: str | None = None
    status: ModelStatus | list[ModelStatus] | None = None
    min_performance: dict[str, float] | None = None
    date_from: date | None = None
    date_to: date | None = None
    tags: dict[str, str] | None = None
    experiment_name: str | None = None
    # The dataset a model was trained on: instruments ("csi300", or codes comma-joined), handler class
    # name, and a window the training data must lie within (its start on/after, its end on/before).
    dataset_instruments: str | list[str] | None = None
    dataset_handler: str | None = None
    dataset_start_from: date | None = None
    dataset_end_to: date | None = None
    order_by: OrderBy = "created_at"
    descending: bool = True
    limit: int | None = Field(default=None, ge=1, le=100_000)
    offset: int = Field(default=0, ge=0)

    @field_validator("status", mode="before")
    @classmethod
    def _check_status(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple, set)):
            return [parse_status(v) for v in value]
        return None if value is None else parse_status(value)

    @field_validator("min_performance", mode="before")
    @classmethod
    def _check_metrics(cls, value: Any) -> Any:
        return validate_metrics(value) if isinstance(value, dict) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _check_tags(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                validate_tag_key(key)
        return value

    @model_validator(mode="after")
    def _refuse_nul(self) -> ModelFilter:
        # No stored text holds NUL, and PostgreSQL refuses to compare with it: same error on every backend.
        texts = [self.model_name, self.model_type, self.experiment_name, self.dataset_handler,
                 *(self.tags or {}).values(), *([self.dataset_instruments] if isinstance(self.dataset_instruments, str)
                                               else self.dataset_instruments or [])]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise InvalidNameError("a model filter value contains a NUL character")
        return self

    def statuses(self) -> list[ModelStatus]:
        """The status filter as a list (empty means any status)."""
        if self.status is None:
            return []
        return self.status if isinstance(self.status, list) else [self.status]


class ModelEvent(BaseModel):
    """One entry of the append-only history."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    event_id: int
    model_id: str
    model_name: str
    event: str
    from_status: ModelStatus | None
    to_status: ModelStatus | None
    actor: str
    reason: str | None
    flow_run_id: str | None
    created_at: datetime
