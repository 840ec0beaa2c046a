"""The port's second copy of each model (a Qlib Recorder in production) seen from the registry: a protocol,
and how the registry finds the Qlib-side implementation without importing Qlib or MLflow.

The Qlib side provides it in one of two ways, checked in this order:
1. a registration hook: `register_recorder_store_factory(factory)` (tests and embedding applications);
2. the entry point `qlib` in the group `qmp.recorder_stores` (pyproject.toml points it at
   `tasks.core.qlib.recorder_store:QlibRecorderStore.for_registry`), loaded on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from registry.compat.repository_metadata import RepositoryModelMetadata
from registry.errors import RecorderUnavailableError

ENTRY_POINT_GROUP = "qmp.recorder_stores"
ENTRY_POINT_NAME = "qlib"


class RecorderStore(Protocol):
    """Where a second copy of each model goes (the Qlib Recorder in production, a fake in unit tests)."""

    def save(self, model: Any, metadata: RepositoryModelMetadata) -> str: ...

    def load(self, recorder_id: str, experiment_name: str) -> Any: ...

    def delete(self, recorder_id: str, experiment_name: str) -> None: ...


RecorderStoreFactory = Callable[[Path], RecorderStore]
"""Builds a recorder store whose recorder artifacts go under the given directory."""

_factory: RecorderStoreFactory | None = None


def register_recorder_store_factory(factory: RecorderStoreFactory | None) -> None:
    """Use `factory` for `QlibModelRepository(use_qlib_recorder=True)` (None: back to the entry point)."""
    global _factory
    _factory = factory


def recorder_store_for(artifact_root: Path) -> RecorderStore:
    """The registered recorder store, else the `qmp.recorder_stores` entry point's, for `artifact_root`."""
    factory = _factory
    if factory is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == ENTRY_POINT_NAME]
        if not found:
            raise RecorderUnavailableError(
                f"use_qlib_recorder needs a recorder store: none registered and no entry point "
                f"{ENTRY_POINT_NAME!r} in group {ENTRY_POINT_GROUP!r} (is the pipeline installed?)"
            )
        factory = found[0].load()
    store: RecorderStore = factory(artifact_root)
    return store
