"""The original registry API's async model repository port (`IModelRepository`) and its adapter over the registry.

`QlibModelRepository` keeps no store of its own: every call goes to a `ModelRegistry`, run in a worker
thread (`asyncio.to_thread`) so that an async flow or service keeps its event loop serving while a
model is pickled, hashed, written or read.

Ids: the original API names a model with a caller-chosen id such as `"lgbm_001"`. That id is the registry's
model *name*; saving it again adds a version (the registry allocates `1.0.0`, `1.1.0`, ...), and
`load_model`/`get_model_metadata` return the newest version (or the one passed as `version=`).
`delete_model` removes every version.

Times: the caller's `created_at` comes back unchanged as `created_at` (stored in the reserved tag
`repository:created_at`, its date also as the training date); the registry's registration time comes back
as `registered_at`. A model that is not there raises `RepositoryModelNotFoundError`, which is both the
registry's `ModelNotFoundError` and the `FileNotFoundError` the original registry API raised.
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

from registry.compat.recorder import RecorderStore, recorder_store_for
from registry.compat.repository_metadata import CREATED_AT_TAG, RepositoryModelMetadata
from registry.errors import (
    InvalidArgumentError,
    ModelNotFoundError,
    ProductionModelDeletionError,
    RecorderMismatchError,
    RepositoryModelNotFoundError,
)
from registry.models import ModelFilter, ModelInfo, ModelMetadata
from registry.predictions import Prediction
from registry.service import ModelRegistry
from registry.settings import load_settings
from registry.statuses import ModelStatus

DEFAULT_CONCURRENCY = 8


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
    """The original registry API's view of a registered model."""
    tags = dict(info.tags)
    created = tags.pop(CREATED_AT_TAG, None)
    return RepositoryModelMetadata(
        model_id=info.model_name, experiment_name=info.experiment_name or "", model_type=info.model_type,
        hyperparameters=info.hyperparameters, metrics=info.performance_metrics,
        created_at=datetime.fromisoformat(created) if created else info.created_at,
        qlib_recorder_id=info.qlib_recorder_id, tags=tags, dataset=info.dataset_info,
        version=info.version, registry_model_id=info.model_id, registered_at=info.created_at,
    )


def to_registry_metadata(metadata: RepositoryModelMetadata, recorder_id: str | None) -> ModelMetadata:
    """The registry's metadata for an entity of the original API (its id becomes the model name)."""
    return ModelMetadata(
        model_name=metadata.model_id, version=metadata.version, training_date=metadata.created_at.date(),
        performance_metrics=metadata.metrics, hyperparameters=metadata.hyperparameters,
        model_type=metadata.model_type, experiment_name=metadata.experiment_name,
        qlib_recorder_id=recorder_id, tags={**metadata.tags, CREATED_AT_TAG: metadata.created_at.isoformat()},
        dataset_info=metadata.dataset,
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
            settings = load_settings(registry_dir=models_dir, database_url=url)
            registry = ModelRegistry.from_settings(settings, **registry_options)
        self.registry = registry
        self.use_qlib_recorder = use_qlib_recorder
        if recorder is None and use_qlib_recorder:
            recorder = recorder_store_for(registry.registry_dir / "mlruns")
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
        metadata.qlib_recorder_id = recorder_id  # the original API hands the recorder id back on the caller's object
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
            raise InvalidArgumentError(f"source must be 'registry' or 'recorder', not {source!r}")
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
        """The newest version's metadata (or `version`'s); RepositoryModelNotFoundError when there is none."""
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
            try:
                return self.registry.get_model_info(f"{model_id}_v{version}")
            except ModelNotFoundError as exc:
                raise RepositoryModelNotFoundError(str(exc)) from None
        found = self.registry.list_models(ModelFilter(model_name=model_id, limit=1))
        if not found:
            raise RepositoryModelNotFoundError(f"model {model_id!r} not found in registry at {self.registry.artifacts.location}")
        return found[0]

    def _delete(self, model_id: str) -> None:
        versions = self.registry.list_models(ModelFilter(model_name=model_id))
        if not versions:
            raise RepositoryModelNotFoundError(f"model {model_id!r} not found in registry at {self.registry.artifacts.location}")
        production = [v.model_id for v in versions if v.status == ModelStatus.PRODUCTION]
        if production:
            raise ProductionModelDeletionError(
                f"model {model_id!r} has the production version {production[0]!r}: promote another model first"
            )
        for info in versions:
            self.registry.delete_model(info.model_id, reason="deleted through the model repository")
            if self.use_qlib_recorder and self.recorder is not None and info.qlib_recorder_id:
                self.recorder.delete(info.qlib_recorder_id, info.experiment_name or "")
