"""The web app's one registry, opened on the first request that needs it."""

from __future__ import annotations

import threading

from registry import ModelRegistry, load_settings
from registry.settings import Settings


class RegistryHolder:
    """The app's one registry, opened on first use; a database that is down when the app starts (or later)
    gives 503 pages, and the next request tries again."""

    def __init__(self, settings: Settings | None, registry: ModelRegistry | None) -> None:
        self._settings = settings
        self._registry = registry
        self._lock = threading.Lock()

    def get(self) -> ModelRegistry:
        if self._registry is None:
            with self._lock:
                if self._registry is None:
                    # A short retry budget: a person waiting on a page wants the 503 within seconds.
                    settings = self._settings or load_settings()
                    self._registry = ModelRegistry.from_settings(
                        settings, retry_budget_s=2.0, timeout_s=settings.interactive_database_timeout()
                    )
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
