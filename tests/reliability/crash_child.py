"""A registering process that kills itself with SIGKILL at one chosen step (run by test_crashes.py).

Usage: python -m tests.reliability.crash_child REGISTRY_DIR DATABASE_URL STEP MODEL_NAME
"""

from __future__ import annotations

import os
import signal
import sys
from functools import wraps
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from registry import ModelMetadata, ModelRegistry
from registry.artifacts.local import LocalArtifactStore

STEPS = (
    "after_staging", "before_rename", "after_rename", "before_commit", "after_commit", "delete_after_commit",
)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_after(cls: type, method: str) -> None:
    original = getattr(cls, method)

    @wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        die()
        return result

    setattr(cls, method, wrapper)


def die_on_first_publishing_rename(registry_dir: str) -> None:
    """Die just before the staged directory is renamed to its model id (metadata.json already written)."""
    staging = os.path.join(registry_dir, ".staging")
    for name in ("rename", "replace"):
        original = getattr(os, name)

        def guarded(src: Any, dst: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if str(src).startswith(staging) and not str(dst).startswith(staging):
                die()
            return _original(src, dst, *args, **kwargs)

        setattr(os, name, guarded)


def die_at_commit(hook: str, armed: list[bool]) -> None:
    @event.listens_for(Session, hook)
    def _maybe_die(_session: Session) -> None:
        if armed:
            die()


def main(registry_dir: str, database_url: str, step: str, name: str) -> None:
    reg = ModelRegistry(registry_dir, database_url)
    metadata = ModelMetadata(model_name=name, performance_metrics={"ic_mean": 0.05}, tags={"crash": step})
    armed: list[bool] = []
    if step == "after_staging":
        die_after(LocalArtifactStore, "stage_object")
    elif step == "before_rename":
        die_on_first_publishing_rename(str(reg.registry_dir))
    elif step == "after_rename":
        die_after(LocalArtifactStore, "publish")
    elif step in ("before_commit", "after_commit"):
        die_at_commit(step, armed)
        original_publish = LocalArtifactStore.publish

        def publish_then_arm(self: LocalArtifactStore, *args: Any, **kwargs: Any) -> Any:
            result = original_publish(self, *args, **kwargs)
            armed.append(True)
            return result

        LocalArtifactStore.publish = publish_then_arm  # type: ignore[method-assign]
    elif step == "delete_after_commit":
        victim = reg.register_model({"victim": True}, metadata)
        die_at_commit("after_commit", armed)
        armed.append(True)
        reg.delete_model(victim)
        sys.exit("delete_model returned: the process should have been killed")
    else:
        sys.exit(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
    reg.register_model({"weights": [1.0, 2.0], "step": step}, metadata)
    sys.exit(f"register_model returned at step {step}: the process should have been killed")


if __name__ == "__main__":
    main(*sys.argv[1:5])
