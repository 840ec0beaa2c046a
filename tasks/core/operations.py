"""Plain functions between a trained model and the registry: register, promote, roll back."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from registry import DatasetConfig, ModelInfo, ModelMetadata, ModelRegistry
from registry.settings import Settings, load_settings
from tasks.core.online_status import sync_online_tags

if TYPE_CHECKING:  # importing it imports Qlib; `qmp models promote` uses this module without Qlib
    from tasks.core.workflow_config import WorkflowConfig


@lru_cache(maxsize=8)
def _registry_for(registry_dir: Path, database_url: str | None) -> ModelRegistry:
    return ModelRegistry(registry_dir, database_url)


def open_registry(settings: Settings | None = None) -> ModelRegistry:
    """The registry QMP_REGISTRY_DIR / QMP_DATABASE_URL name, one instance (and pool) per process."""
    settings = settings or load_settings()
    return _registry_for(settings.registry_dir.expanduser().resolve(), settings.database_url)


def metadata_for(
    model_name: str,
    cfg: WorkflowConfig,
    metrics: dict[str, float],
    *,
    experiment_name: str | None,
    recorder_id: str | None,
    tags: dict[str, str] | None = None,
) -> ModelMetadata:
    """Registry metadata for a model trained from `cfg` (non-finite metrics are left out)."""
    info = cfg.dataset_info
    dataset = DatasetConfig(
        instruments=info.instruments, start_time=info.start_time, end_time=info.end_time,
        label=info.label[0] if info.label else None, handler=info.handler,
        segments=info.segments, benchmark=info.benchmark,
    )
    finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
    config_tag = {"config": Path(cfg.source).name} if cfg.source and cfg.source != "<inline config>" else {}
    return ModelMetadata(
        model_name=model_name,
        performance_metrics=finite,
        dataset_info=dataset,
        hyperparameters=to_jsonable_python(cfg.hyperparameters, fallback=str),
        model_type=cfg.model_type,
        experiment_name=experiment_name,
        qlib_recorder_id=recorder_id,
        tags={"source": "retrain", **config_tag, **(tags or {})},
    )


def register_trained(
    model: Any, metadata: ModelMetadata, *, flow_run_id: str | None, actor: str = "retrain-flow"
) -> ModelInfo:
    """Register a trained model; a retried flow run gets its earlier registration back, not a new one."""
    registry = open_registry()
    model_id = registry.register_model(
        model, metadata, actor=actor, reason="registered by the retrain flow", flow_run_id=flow_run_id
    )
    return registry.get_model_info(model_id)


def promote(model_id: str, *, actor: str | None, reason: str | None, flow_run_id: str | None = None) -> tuple[ModelInfo, ModelInfo | None]:
    """Make `model_id` production and mirror it on the Qlib recorders; returns (new, old) production."""
    registry = open_registry()
    name = registry.get_model_info(model_id).model_name
    old = registry.get_production_model(name)
    new = registry.set_production_model(model_id, actor=actor, reason=reason, flow_run_id=flow_run_id)
    previous = old if old is not None and old.model_id != new.model_id else None
    sync_online_tags(new, previous)
    return new, previous


def rollback(model_name: str, *, actor: str | None, reason: str | None, flow_run_id: str | None = None) -> tuple[ModelInfo, ModelInfo | None]:
    """Restore the previous production model (its artifact checksum is verified first)."""
    registry = open_registry()
    old = registry.get_production_model(model_name)
    new = registry.rollback(model_name, actor=actor, reason=reason, flow_run_id=flow_run_id)
    sync_online_tags(new, old)
    return new, old
