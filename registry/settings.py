"""Settings read at the edges (CLI, flows): environment variables prefixed `QMP_`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the registry, its database and the Qlib data live; explicit arguments always win."""

    model_config = SettingsConfigDict(env_prefix="QMP_", env_file=".env", extra="ignore")

    registry_dir: Path = Field(Path("./model_registry"), description="Artifact root of the model registry.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the registry database; default: SQLite file inside registry_dir."
    )
    database_timeout: float = Field(
        5.0, gt=0, le=3600,
        description="Seconds a unit of database work may take on a server database (PostgreSQL) before it fails "
        "as unavailable: a server-side statement_timeout plus a client-side deadline against a silent peer.",
    )
    artifact_uri: str | None = Field(
        None, description="Object-storage root of the artifacts (e.g. s3://bucket/prefix); default: registry_dir."
    )
    artifact_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for artifact_uri as JSON, e.g. {\"endpoint_url\": \"http://minio:9000\"}.",
    )
    artifact_compression: Literal["gzip", "zstd", "none"] | None = Field(
        None, description="Compress new artifacts with gzip or zstd (loading is transparent either way)."
    )
    provider_uri: Path | None = Field(
        None, description="Qlib data directory; overrides the workflow YAML's qlib_init.provider_uri."
    )
    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI for Qlib recorders; default: SQLite file inside registry_dir."
    )
    mlflow_artifact_uri: str | None = Field(
        None, description="Where new experiments keep recorder artifacts (e.g. s3://bucket/mlruns); default: registry_dir/mlruns."
    )
    feature_cache: Literal["off", "qlib"] = Field(
        "off", description="Qlib's dataset cache (DiskDatasetCache, Redis-locked) for every Qlib initialisation."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/1", description="Redis holding the feature cache's read/write locks (redis://host:port/db)."
    )
    feature_cache_dir: Path | None = Field(
        None,
        description="Where feature caches live; default: inside the Qlib data directory (which must then be writable).",
    )

    def resolved_mlflow_uri(self) -> str:
        """The tracking URI Qlib's recorders use (MLflow 3 refuses the file store, so a database URI)."""
        if self.mlflow_uri:
            return self.mlflow_uri
        return f"sqlite:///{(self.registry_dir / 'mlflow.db').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit non-None overrides applied on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})  # type: ignore[arg-type]
