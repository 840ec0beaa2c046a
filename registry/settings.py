"""Settings read at the edges (CLI, flows): environment variables prefixed `QMP_`, then the working
directory's `.env`, then the workspace's `settings.env` (`$QMP_HOME/settings.env`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

WORKSPACE_SETTINGS_FILE = "settings.env"
CWD_ENV_FILE = ".env"


# How long a person waits for a page or a `qmp models ...` answer before a hanging database is reported.
INTERACTIVE_DATABASE_TIMEOUT_S = 5.0


def workspace_home() -> Path:
    """The per-user workspace: `QMP_HOME`, else `$XDG_DATA_HOME/qmp`, else `~/.local/share/qmp`.

    Read from the environment only (the workspace's own settings file lives inside it), so every command finds
    the same registry, recorders and data from any working directory.
    """
    if os.environ.get("QMP_HOME"):
        return Path(os.environ["QMP_HOME"]).expanduser().absolute()
    data_home = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return (Path(data_home).expanduser() / "qmp").absolute()


def workspace_settings_file() -> Path:
    """The settings file of the workspace (`qmp demo` writes it); the working directory's `.env` wins over it."""
    return workspace_home() / WORKSPACE_SETTINGS_FILE


def _default_registry_dir() -> Path:
    return workspace_home() / "model_registry"


def default_ingest_folder() -> Path:
    """The workspace's feed folder, read by the ingest flow when neither its source nor `QMP_INGEST_SOURCE` is
    given; it may not exist yet (a run then completes, saying where to put files)."""
    return workspace_home() / "incoming"


class Settings(BaseSettings):
    """Where the registry, its database and the Qlib data live; explicit arguments always win."""

    model_config = SettingsConfigDict(env_prefix="QMP_", env_file=CWD_ENV_FILE, extra="ignore")

    registry_dir: Path = Field(
        default_factory=_default_registry_dir, description="Artifact root of the model registry; default: $QMP_HOME/model_registry."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the registry database; default: SQLite file inside registry_dir."
    )
    database_timeout: float | None = Field(
        None, gt=0, le=3600,
        description="Seconds a unit of database work may take on a server database (PostgreSQL) before it fails "
        "as unavailable: a server-side statement_timeout plus a client-side deadline against a silent peer. "
        "Default: 5 s for interactive work (the web page, the CLI's reads), none for flows and cleanups, whose "
        "bulk statements at registry scale legitimately take longer.",
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
    ingest_source: str | None = Field(
        None, description="The feed the ingest flow (the ingest-daily deployment) reads when no source is given: a "
        "folder of per-instrument files, a CSV/Parquet table or a SQLAlchemy URL; default: $QMP_HOME/incoming.",
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The workspace's settings file under the working directory's `.env` (a later file wins); an explicit
        `_env_file` is left as given."""
        if isinstance(dotenv_settings, DotEnvSettingsSource) and dotenv_settings.env_file == CWD_ENV_FILE:
            dotenv_settings = DotEnvSettingsSource(settings_cls, env_file=(workspace_settings_file(), CWD_ENV_FILE))
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def interactive_database_timeout(self) -> float:
        """The deadline of interactive database work (the web page, the CLI's reads): the setting, else 5 s."""
        return self.database_timeout if self.database_timeout is not None else INTERACTIVE_DATABASE_TIMEOUT_S

    def resolved_mlflow_uri(self) -> str:
        """The tracking URI Qlib's recorders use (MLflow 3 refuses the file store, so a database URI)."""
        if self.mlflow_uri:
            return self.mlflow_uri
        return f"sqlite:///{(self.registry_dir / 'mlflow.db').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit non-None overrides applied on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})  # type: ignore[arg-type]


def update_workspace_settings(values: dict[str, str], remove: tuple[str, ...] = ()) -> Path:
    """Set ``values`` (and drop the ``remove`` keys) in the workspace's settings file, keeping its other lines."""
    path = workspace_settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    replaced = {*values, *remove}
    kept = [
        line for line in (path.read_text().splitlines() if path.exists() else [])
        if line.partition("=")[0].strip() not in replaced
    ]
    kept += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(kept) + "\n")
    return path
