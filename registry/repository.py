"""The seed's async model repository port (`IModelRepository`) and its adapter over the registry.

`QlibModelRepository` keeps no store of its own: every call goes to a `ModelRegistry`, run in a worker
thread (`asyncio.to_thread`) so that an async flow or service keeps its event loop serving while a
model is pickled, hashed, written or read.

Ids: the seed names a model with a caller-chosen id such as `"lgbm_001"`. That id is the registry's
model *name*; saving it again adds a version (the registry allocates `1.0.0`, `1.1.0`, ...), and
`load_model`/`get_model_metadata` return the newest version (or the one passed as `version=`).
`delete_model` removes every version. `created_at` is the registry's registration time; the caller's
`created_at` is kept as the training date.
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.errors import ModelNotFoundError, ProductionModelDeletionError
from registry.models import DatasetConfig, ModelFilter, ModelInfo, ModelMetadata
from registry.predictions import Prediction
from registry.registry import ModelRegistry
from registry.statuses import ModelStatus
from tasks.core.recorder_store import QlibRecorderStore, RecorderMismatchError, RecorderStore

DEFAULT_CONCURRENCY = 8


class RepositoryModelMetadata(BaseModel):
    """The seed's ModelMetadata entity, plus the dataset, version and registry id the registry adds."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str
    experiment_name: str
    model_type: str
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=datetime.now)
    qlib_recorder_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    dataset: DatasetConfig | None = None
    version: str | None = None
    registry_model_id: str | None = None


class IModelRepository(ABC):
    """The port: save, load, describe, list and delete models without blocking the caller's event loop."""

    @abstractmethod
    async def save_model(self, model: Any, metadata: RepositoryModelMetadata) -> str:
        """Store the model and its metadata; returns the model id."""

    @abstractmethod
    async def load_model(self, model_id: str) -> tuple[Any, RepositoryModelMetadata]:
        """The model object and its metadata."""

    @abstractmethod
    async def get_model_metadata(self, model_id: str) -> RepositoryModelMetadata:
        """The model's metadata."""

    @abstractmethod
    async def list_models(
        self, experiment_name: str | None = None, model_type: str | None = None
    ) -> list[RepositoryModelMetadata]:
        """Metadata of the stored models, newest first."""

    @abstractmethod
    async def delete_model(self, model_id: str) -> None:
        """Remove the model."""


def to_entity(info: ModelInfo) -> RepositoryModelMetadata:
    """The seed's view of a registered model."""
    return RepositoryModelMetadata(
        model_id=info.model_name, experiment_name=info.experiment_name or "", model_type=info.model_type,
        hyperparameters=info.hyperparameters, metrics=info.performance_metrics, created_at=info.created_at,
        qlib_recorder_id=info.qlib_recorder_id, tags=info.tags, dataset=info.dataset_info,
        version=info.version, registry_model_id=info.model_id,
    )


def to_registry_metadata(metadata: RepositoryModelMetadata, recorder_id: str | None) -> ModelMetadata:
    """The registry's metadata for a seed entity (its id becomes the model name)."""
    return ModelMetadata(
        model_name=metadata.model_id, version=metadata.version, training_date=metadata.created_at.date(),
        performance_metrics=metadata.metrics, hyperparameters=metadata.hyperparameters,
        model_type=metadata.model_type, experiment_name=metadata.experiment_name,
        qlib_recorder_id=recorder_id, tags=metadata.tags, dataset_info=metadata.dataset,
    )


def _pickle_digest(model: Any) -> str:
    return hashlib.sha256(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()


class QlibModelRepository(IModelRepository):
    """`IModelRepository` over a `ModelRegistry`, optionally mirroring each model into a Qlib Recorder."""

    def __init__(
        self,
        registry: ModelRegistry | None = None,
        *,
        models_dir: str | Path = Path("data/models"),
        db_path: str | Path | None = None,
        use_qlib_recorder: bool = False,
        recorder: RecorderStore | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        **registry_options: Any,
    ) -> None:
        if registry is None:
            url = None if db_path is None else f"sqlite:///{Path(db_path).expanduser().resolve()}"
            registry = ModelRegistry(models_dir, url, **registry_options)
        self.registry = registry
        self.use_qlib_recorder = use_qlib_recorder
        if recorder is None and use_qlib_recorder:
            recorder = QlibRecorderStore(artifact_root=registry.registry_dir / "mlruns")
        self.recorder: RecorderStore | None = recorder
        self.max_concurrency = max_concurrency

    def close(self) -> None:
        """Release the registry's database connections."""
        self.registry.close()

    # -- the port ---------------------------------------------------------------------------------

    async def save_model(self, model: Any, metadata: RepositoryModelMetadata) -> str:
        """Register the model (a new version of `metadata.model_id`); with a recorder, log it there first."""
        return await asyncio.to_thread(self.save_model_sync, model, metadata)

    def save_model_sync(self, model: Any, metadata: RepositoryModelMetadata) -> str:
        """`save_model` for synchronous callers."""
        recorder_id = metadata.qlib_recorder_id
        if self.use_qlib_recorder and self.recorder is not None:
            recorder_id = self.recorder.save(model, metadata)
        try:
            self.registry.register_model(model, to_registry_metadata(metadata, recorder_id))
        except BaseException:
            if self.use_qlib_recorder and self.recorder is not None and recorder_id is not None:
                self.recorder.delete(recorder_id, metadata.experiment_name)  # one source of truth
            raise
        metadata.qlib_recorder_id = recorder_id  # the seed hands the recorder id back on the caller's object
        return metadata.model_id

    async def load_model(
        self, model_id: str, *, version: str | None = None, source: str = "registry"
    ) -> tuple[Any, RepositoryModelMetadata]:
        """The newest version's model (or `version`'s); `source="recorder"` loads the Qlib Recorder copy."""
        return await asyncio.to_thread(self.load_model_sync, model_id, version=version, source=source)

    def load_model_sync(
        self, model_id: str, *, version: str | None = None, source: str = "registry"
    ) -> tuple[Any, RepositoryModelMetadata]:
        """`load_model` for synchronous callers; with a recorder copy, both copies must agree."""
        if source not in ("registry", "recorder"):
            raise ValueError(f"source must be 'registry' or 'recorder', not {source!r}")
        info = self._info(model_id, version)
        model = self.registry.get_model(info.model_id)
        if self.use_qlib_recorder and self.recorder is not None and info.qlib_recorder_id:
            copy = self.recorder.load(info.qlib_recorder_id, info.experiment_name or "")
            if _pickle_digest(copy) != _pickle_digest(model):
                raise RecorderMismatchError(
                    f"model {info.model_id!r} differs from its Qlib recorder copy {info.qlib_recorder_id!r}"
                )
            if source == "recorder":
                model = copy
        elif source == "recorder":
            raise RecorderMismatchError(f"model {info.model_id!r} has no Qlib recorder copy to load")
        return model, to_entity(info)

    async def get_model_metadata(self, model_id: str, *, version: str | None = None) -> RepositoryModelMetadata:
        """The newest version's metadata (or `version`'s); ModelNotFoundError when there is none."""
        return to_entity(await asyncio.to_thread(self._info, model_id, version))

    async def list_models(
        self,
        experiment_name: str | None = None,
        model_type: str | None = None,
        *,
        all_versions: bool = False,
        dataset_instruments: str | None = None,
        dataset_handler: str | None = None,
    ) -> list[RepositoryModelMetadata]:
        """The newest version of each model id (every version with `all_versions`), newest first."""
        flt = ModelFilter(
            experiment_name=experiment_name, model_type=model_type,
            dataset_instruments=dataset_instruments, dataset_handler=dataset_handler,
        )
        infos = await asyncio.to_thread(self.registry.list_models, flt)
        seen: set[str] = set()
        found = []
        for info in infos:
            if all_versions or info.model_name not in seen:
                seen.add(info.model_name)
                found.append(to_entity(info))
        return found

    async def delete_model(self, model_id: str) -> None:
        """Delete every version of the model id (and its recorder copies); refused while one is in production."""
        await asyncio.to_thread(self._delete, model_id)

    # -- beyond the port --------------------------------------------------------------------------

    async def load_models_batch(
        self, model_ids: Sequence[str], *, max_concurrency: int | None = None
    ) -> list[tuple[Any, RepositoryModelMetadata]]:
        """Load many models concurrently (at most `max_concurrency` threads at once), in the order asked."""
        gate = asyncio.Semaphore(max_concurrency or self.max_concurrency)

        async def one(model_id: str) -> tuple[Any, RepositoryModelMetadata]:
            async with gate:
                return await self.load_model(model_id)

        return list(await asyncio.gather(*(one(model_id) for model_id in model_ids)))

    async def predictions(self, model_name: str, on: date | tuple[date, date] | None = None) -> list[Prediction]:
        """The stored daily scores of registry name `model_name` (see `ModelRegistry.predictions`)."""
        return await asyncio.to_thread(self.registry.predictions, model_name, on)

    def _info(self, model_id: str, version: str | None) -> ModelInfo:
        if version is not None:
            return self.registry.get_model_info(f"{model_id}_v{version}")
        found = self.registry.list_models(ModelFilter(model_name=model_id, limit=1))
        if not found:
            raise ModelNotFoundError(f"model {model_id!r} not found in registry at {self.registry.artifacts.location}")
        return found[0]

    def _delete(self, model_id: str) -> None:
        versions = self.registry.list_models(ModelFilter(model_name=model_id))
        if not versions:
            raise ModelNotFoundError(f"model {model_id!r} not found in registry at {self.registry.artifacts.location}")
        production = [v.model_id for v in versions if v.status == ModelStatus.PRODUCTION]
        if production:
            raise ProductionModelDeletionError(
                f"model {model_id!r} has the production version {production[0]!r}: promote another model first"
            )
        for info in versions:
            self.registry.delete_model(info.model_id, reason="deleted through the model repository")
            if self.use_qlib_recorder and self.recorder is not None and info.qlib_recorder_id:
                self.recorder.delete(info.qlib_recorder_id, info.experiment_name or "")
