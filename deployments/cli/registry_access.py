"""How read-only commands open the registry: the one the QMP_* settings name, and only if it exists."""

from __future__ import annotations

from pathlib import Path

from registry import ModelRegistry, RegistryNotFoundError
from registry.settings import Settings, load_settings
from registry.store.db import sqlite_url_for


def existing_registry(settings: Settings | None = None) -> ModelRegistry:
    """The settings' registry; a missing embedded SQLite registry is an error, not a new empty one."""
    settings = settings or load_settings()
    if settings.database_url is None:
        registry_dir = settings.registry_dir.expanduser().resolve()
        if not Path(sqlite_url_for(registry_dir).removeprefix("sqlite:///")).exists():
            raise RegistryNotFoundError(
                f"no registry at {registry_dir} (QMP_REGISTRY_DIR): point QMP_REGISTRY_DIR at an existing one, "
                f"or create it with `qmp db upgrade`"
            )
    return ModelRegistry.from_settings(settings, timeout_s=settings.interactive_database_timeout())
