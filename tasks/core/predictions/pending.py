"""What `qmp predict` asks before it starts a run: which names have a production model, and the words for a run
with nothing to do. Reads the registry only (no Qlib import), so the answer costs no Qlib or MLflow start-up."""

from __future__ import annotations

from registry import ModelFilter, ModelRegistry, ModelStatus

NOTHING_TO_PREDICT = "nothing to predict"


def production_names(registry: ModelRegistry) -> list[str]:
    """Every name that has a production model, sorted."""
    return sorted({info.model_name for info in registry.list_models(ModelFilter(status=ModelStatus.PRODUCTION))})
