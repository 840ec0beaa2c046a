"""The async repository port's metadata entity (the original registry API's ModelMetadata)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.models import DatasetConfig

CREATED_AT_TAG = "repository:created_at"  # the caller's created_at, returned as given


class RepositoryModelMetadata(BaseModel):
    """The original API's ModelMetadata entity (a pydantic model: `model_dump()` where it called `dataclasses.asdict`), plus the dataset, version, registry id and registration time the registry adds."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str
    experiment_name: str
    model_type: str
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=datetime.now)
    qlib_recorder_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    dataset: DatasetConfig | None = None
    version: str | None = None
    registry_model_id: str | None = None
    registered_at: datetime | None = None

    @field_validator("tags", "hyperparameters", "metrics", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """The original API's dataclass turns `tags=None` into `{}`."""
        return {} if value is None else value
