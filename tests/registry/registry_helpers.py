"""Helpers shared by the registry contract tests ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry import ModelMetadata, ModelRegistry


def metadata(name: str = "lgbm_alpha158", version: str | None = None, ic_mean: float | None = None,
             **fields: Any) -> ModelMetadata:
    """Metadata in the original API's shape, with `ic_mean` as the only metric when given."""
    metrics = {} if ic_mean is None else {"ic_mean": ic_mean}
    fields.setdefault("performance_metrics", metrics)
    fields.setdefault("training_date", "2024-01-01")
    return ModelMetadata(model_name=name, version=version, **fields)


def leftover_dirs(reg: ModelRegistry) -> list[Path]:
    """Every model directory and staging entry in the registry's artifact root."""
    return reg.artifacts.entries()


def register_many(registry_dir: str, database_url: str, name: str, count: int, worker: int) -> list[str]:
    """Open a registry of one's own and register `count` models under `name` (run in a child process)."""
    with ModelRegistry(registry_dir, database_url) as reg:
        return [
            reg.register_model({"worker": worker, "n": n}, metadata(name), actor=f"worker-{worker}")
            for n in range(count)
        ]
