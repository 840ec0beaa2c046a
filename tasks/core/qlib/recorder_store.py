"""The Qlib Recorder copy of a model (the `registry.compat.recorder.RecorderStore` the async port uses): logged with its params and metrics so Qlib's tools and MLflow see it.

Qlib keeps its experiment manager in module globals set by `qlib.init` (see `tasks.core.qlib.session.init_qlib`),
and its recorder is not thread-safe: every recorder call here runs under one re-entrant lock, which
callers that also train with Qlib should share (pass `tasks.core.qlib.session.QLIB_LOCK`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import QlibNotInitialisedError, RecorderMismatchError

if TYPE_CHECKING:
    from registry.compat.repository_metadata import RepositoryModelMetadata

MODEL_OBJECT = "trained_model"  # the name Qlib's own workflow saves the model under
MODEL_ID_TAG = "qmp_model_id"


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as MLflow params (`a.b=1`)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _create_experiment(name: str, artifact_root: Path) -> None:
    """Create MLflow experiment `name` on Qlib's tracking URI with its artifacts under `artifact_root`."""
    import mlflow
    from qlib.workflow import R

    client = mlflow.tracking.MlflowClient(tracking_uri=R.get_uri())
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=(artifact_root / name).resolve().as_uri())


class QlibRecorderStore:
    """Saves the model as a Qlib Recorder object (`R.save_objects`) with its params, metrics and tags."""

    def __init__(
        self,
        lock: threading.RLock | None = None,
        prepare_experiment: Callable[[str], object] | None = None,
        artifact_root: Path | None = None,
    ) -> None:
        self.lock = lock or threading.RLock()
        # Without an artifact location MLflow writes recorder artifacts to <cwd>/mlruns: new experiments
        # get `{artifact_root}/{name}`, or whatever `prepare_experiment` (tasks.core.qlib.session.ensure_experiment) does.
        self.prepare_experiment = prepare_experiment or (
            (lambda name: _create_experiment(name, artifact_root)) if artifact_root is not None else None
        )

    @classmethod
    def for_registry(cls, artifact_root: Path) -> QlibRecorderStore:
        """The store `registry.compat.recorder` finds through the `qmp.recorder_stores` entry point."""
        return cls(artifact_root=artifact_root)

    @staticmethod
    def _recorder_api() -> Any:
        from qlib.config import C

        if not C.registered:
            raise QlibNotInitialisedError(
                "use_qlib_recorder needs Qlib initialised (qlib.init, or tasks.core.qlib.session.init_qlib) before saving"
            )
        from qlib.workflow import R

        return R

    def save(self, model: Any, metadata: RepositoryModelMetadata) -> str:
        """Log params and metrics, save the model object; returns the recorder id."""
        api = self._recorder_api()
        with self.lock:
            if self.prepare_experiment is not None:
                self.prepare_experiment(metadata.experiment_name)
            with api.start(experiment_name=metadata.experiment_name):
                if metadata.hyperparameters:
                    api.log_params(**_flat(metadata.hyperparameters))
                if metadata.metrics:
                    api.log_metrics(**metadata.metrics)
                api.set_tags(**{MODEL_ID_TAG: metadata.model_id, "model_type": metadata.model_type, **metadata.tags})
                api.save_objects(**{MODEL_OBJECT: model})
                return str(api.get_recorder().id)

    def load(self, recorder_id: str, experiment_name: str) -> Any:
        """The model object saved in recorder `recorder_id`."""
        api = self._recorder_api()
        with self.lock:
            try:
                recorder = api.get_recorder(recorder_id=recorder_id, experiment_name=experiment_name)
                return recorder.load_object(MODEL_OBJECT)
            except Exception as exc:  # MLflow and Qlib raise plain exceptions for missing runs and files
                raise RecorderMismatchError(
                    f"Qlib recorder {recorder_id!r} of experiment {experiment_name!r} cannot be loaded: {exc}"
                ) from exc

    def delete(self, recorder_id: str, experiment_name: str) -> None:
        """Delete the recorder (best effort: a missing one is already gone)."""
        api = self._recorder_api()
        with self.lock:
            try:
                api.get_exp(experiment_name=experiment_name, create=False).delete_recorder(recorder_id)
            except Exception:  # the registry row is the source of truth; a missing recorder is already gone
                return
