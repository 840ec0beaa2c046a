"""Plain functions between a trained model and the registry: open it, register, promote, roll back."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from registry import DatasetConfig, EvaluationSeries, ModelInfo, ModelMetadata, ModelRegistry, ModelStatus
from registry.policy import Action, Decision
from registry.settings import Settings
from tasks.core.qlib.online_status import sync_online_tags

if TYPE_CHECKING:  # importing it imports Qlib; `qmp models promote` uses this module without Qlib
    from tasks.core.qlib.workflow_config import WorkflowConfig


@lru_cache(maxsize=8)
def _registry_for(settings_json: str) -> ModelRegistry:
    return ModelRegistry.from_settings(Settings.model_validate_json(settings_json))


def open_registry(settings: Settings) -> ModelRegistry:
    """The registry `settings` name (`ModelRegistry.from_settings`), one instance (and pool) per process and
    settings."""
    resolved = settings.model_copy(update={"registry_dir": settings.registry_dir.expanduser().resolve()})
    return _registry_for(resolved.model_dump_json())


def metadata_for(
    model_name: str,
    cfg: WorkflowConfig,
    metrics: dict[str, float],
    *,
    experiment_name: str | None,
    recorder_id: str | None,
    tags: dict[str, str] | None = None,
    dataset_extras: dict[str, Any] | None = None,
) -> ModelMetadata:
    """Registry metadata for a model trained from `cfg` (non-finite metrics are left out).

    ``dataset_extras`` (the window's exact segments, the data version, ...) are kept in the dataset info.
    """
    info = cfg.dataset_info
    fields: dict[str, Any] = dict(
        instruments=info.instruments, start_time=info.start_time, end_time=info.end_time,
        label=info.label[0] if info.label else None, handler=info.handler,
        segments=info.segments, benchmark=info.benchmark,
    )
    dataset = DatasetConfig(**{**fields, **(dataset_extras or {})})
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
    model: Any, metadata: ModelMetadata, settings: Settings, *, flow_run_id: str | None,
    actor: str = "retrain-flow", series: dict[str, EvaluationSeries] | None = None,
) -> ModelInfo:
    """Register a trained model with its evaluation series as `registered` (the flow's promotion policy decides
    whether it becomes a candidate); a retried flow run gets its earlier registration back, not a new one."""
    registry = open_registry(settings)
    model_id = registry.register_model(
        model, metadata, actor=actor, reason="registered by the retrain flow", flow_run_id=flow_run_id,
        initial_status=ModelStatus.REGISTERED, evaluation_series=series,
    )
    return registry.get_model_info(model_id)


def mark_candidate(
    info: ModelInfo, decision: Decision, settings: Settings, *, actor: str, flow_run_id: str | None = None
) -> ModelInfo:
    """Make a registered model a candidate when the policy's decision says it beats production (promote or
    ask for approval); otherwise leave it as it is."""
    if decision.action == Action.KEEP or info.status != ModelStatus.REGISTERED:
        return info
    registry = open_registry(settings)
    registry.set_model_status(info.model_id, ModelStatus.CANDIDATE, actor=actor,
                              reason="; ".join(decision.reasons), flow_run_id=flow_run_id)
    return registry.get_model_info(info.model_id)


def promote(model_id: str, settings: Settings, *, actor: str | None, reason: str | None,
            flow_run_id: str | None = None) -> tuple[ModelInfo, ModelInfo | None]:
    """Make `model_id` production and tag the Qlib recorders `online_status`; returns (new, old) production.
    Every entry point (flows, CLI) promotes through this, then emits `qmp.model.promoted` (`tasks.events`)."""
    registry = open_registry(settings)
    name = registry.get_model_info(model_id).model_name
    old = registry.get_production_model(name)
    new = registry.set_production_model(model_id, actor=actor, reason=reason, flow_run_id=flow_run_id)
    previous = old if old is not None and old.model_id != new.model_id else None
    sync_online_tags(new, previous, settings)
    return new, previous


def rollback(model_name: str, settings: Settings, *, actor: str | None, reason: str | None,
             flow_run_id: str | None = None) -> tuple[ModelInfo, ModelInfo | None]:
    """Restore the previous production model (its artifact checksum is verified first), with the same recorder
    tags as a promotion; returns (new, old) production. Callers then emit `qmp.model.rolled_back`."""
    registry = open_registry(settings)
    old = registry.get_production_model(model_name)
    new = registry.rollback(model_name, actor=actor, reason=reason, flow_run_id=flow_run_id)
    sync_online_tags(new, old, settings)
    return new, old
