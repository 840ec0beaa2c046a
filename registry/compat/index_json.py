"""Compatibility with the original registry API's storage: export an `index.json`, import such a directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import ModelRegistryError
from registry.models import DatasetConfig, ModelFilter, ModelMetadata
from registry.service import ModelRegistry
from registry.statuses import ModelStatus, parse_status

INDEX_FILE = "index.json"


def index_entries(registry: ModelRegistry) -> dict[str, dict[str, Any]]:
    """The registry's models in the original API's index.json shape, keyed by model id."""
    return {
        info.model_id: {
            "model_id": info.model_id,
            "model_name": info.model_name,
            "version": info.version,
            "model_type": info.model_type,
            "training_date": info.training_date.isoformat(),
            "performance_metrics": info.performance_metrics,
            "status": info.status.value,
            "model_path": info.model_path,
            "metadata_path": info.metadata_path,
        }
        for info in registry.list_models(ModelFilter(order_by="version", descending=False))
    }


def export_index(registry: ModelRegistry, path: Path | None = None) -> Path:
    """Write the original API's index.json (default: inside registry_dir), atomically."""
    target = path or registry.registry_dir / INDEX_FILE
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as sink:
        json.dump(index_entries(registry), sink, indent=2, ensure_ascii=False)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, target)
    return target


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # model id -> why


def _metadata_for(entry: dict[str, Any], model_dir: Path) -> ModelMetadata:
    snapshot: dict[str, Any] = {}
    metadata_file = model_dir / "metadata.json"
    if metadata_file.is_file():
        snapshot = json.loads(metadata_file.read_text(encoding="utf-8"))
    merged = {**snapshot, **{k: v for k, v in entry.items() if v is not None}}
    dataset = merged.get("dataset_info")
    return ModelMetadata(
        model_name=merged["model_name"],
        version=str(merged["version"]) if merged.get("version") is not None else None,
        training_date=merged.get("training_date") or None,  # type: ignore[arg-type]
        performance_metrics=merged.get("performance_metrics") or {},
        dataset_info=DatasetConfig.model_validate(dataset) if isinstance(dataset, dict) else None,
        hyperparameters=merged.get("hyperparameters") or {},
        model_type=merged.get("model_type"),
        experiment_name=merged.get("experiment_name"),
        qlib_recorder_id=merged.get("qlib_recorder_id"),
        tags=merged.get("tags") or {},
    )


def import_index(registry: ModelRegistry, source: Path, *, actor: str | None = None) -> ImportReport:
    """Import every model of an original-API directory (index.json + `{model_id}/model.pkl`), keeping statuses."""
    index_path = source / INDEX_FILE
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelRegistryError(f"no {INDEX_FILE} in {str(source)!r}: not a registry directory of the original API") from None
    except json.JSONDecodeError as exc:
        raise ModelRegistryError(f"{index_path} is not valid JSON: {exc}") from exc
    report = ImportReport()
    registry.allowed_source_dirs.append(source.resolve())
    production: list[str] = []
    try:
        for key, entry in index.items():
            model_dir = source / key
            try:
                metadata = _metadata_for(entry, model_dir)
                status = parse_status(entry.get("status", "registered"))
                model_id = registry.register_model(
                    None, metadata, model_path=model_dir / "model.pkl", actor=actor, reason=f"imported from {source}"
                )
            except ModelRegistryError as exc:
                report.skipped[key] = str(exc)
                continue
            report.imported.append(model_id)
            if status == ModelStatus.PRODUCTION:
                production.append(model_id)
            elif registry.get_model_info(model_id).status != status:
                registry.set_model_status(model_id, status, actor=actor, reason="status kept from index.json")
        for model_id in production:
            registry.set_production_model(model_id, actor=actor, reason="production in the imported index.json")
    finally:
        registry.allowed_source_dirs.pop()
    return report
