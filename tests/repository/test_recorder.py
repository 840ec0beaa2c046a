"""Dual storage: each model also saved as a Qlib Recorder object, its id kept, both copies checked on load."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import ModelNotFoundError, ModelRegistry, QlibModelRepository, RepositoryModelMetadata
from registry.errors import RecorderMismatchError
from registry.settings import load_settings
from tasks.core.qlib.recorder_store import QlibRecorderStore

Meta = Callable[..., RepositoryModelMetadata]


class FakeRecorder:
    """An in-memory stand-in for the Qlib Recorder."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}

    def save(self, model: Any, metadata: RepositoryModelMetadata) -> str:
        recorder_id = f"rec{len(self.objects)}"
        self.objects[recorder_id] = model
        return recorder_id

    def load(self, recorder_id: str, experiment_name: str) -> Any:
        return self.objects[recorder_id]

    def delete(self, recorder_id: str, experiment_name: str) -> None:
        self.objects.pop(recorder_id, None)


async def test_recorder_copy_id_is_kept_and_both_copies_must_agree(registry: ModelRegistry, seed_metadata: Meta) -> None:
    fake = FakeRecorder()
    repo = QlibModelRepository(registry, use_qlib_recorder=True, recorder=fake)
    metadata = seed_metadata("dual", IC=0.05)
    await repo.save_model({"w": [1, 2]}, metadata)
    assert metadata.qlib_recorder_id == "rec0"
    assert registry.get_model_info("dual_v1.0.0").qlib_recorder_id == "rec0"
    assert (await repo.load_model("dual", source="recorder"))[0] == {"w": [1, 2]}

    fake.objects["rec0"] = {"w": [1, 3]}
    for source in ("registry", "recorder"):
        with pytest.raises(RecorderMismatchError, match=r"dual_v1\.0\.0"):
            await repo.load_model("dual", source=source)
    await repo.delete_model("dual")
    assert fake.objects == {}


async def test_a_failed_registration_removes_its_recorder_copy(registry: ModelRegistry, seed_metadata: Meta) -> None:
    fake = FakeRecorder()
    repo = QlibModelRepository(registry, use_qlib_recorder=True, recorder=fake)
    bad = seed_metadata("bad name with spaces")
    with pytest.raises(Exception, match="invalid model name"):
        await repo.save_model({}, bad)
    assert fake.objects == {}
    with pytest.raises(ModelNotFoundError):
        await repo.load_model("bad name with spaces")


@pytest.fixture
def qlib_initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Qlib initialised on an empty data directory with its MLflow database in `tmp_path/models`."""
    from tasks.core.qlib.session import init_qlib

    monkeypatch.chdir(tmp_path)  # so a stray <cwd>/mlruns would show up in the test's directory
    settings = load_settings(registry_dir=tmp_path / "models")
    (tmp_path / "qlib_data").mkdir()
    init_qlib(tmp_path / "qlib_data", settings=settings)
    yield tmp_path / "models"


@pytest.mark.slow
async def test_model_is_a_real_qlib_recorder_object_with_params_and_metrics(
    tmp_path: Path, qlib_initialised: Path, seed_metadata: Meta
) -> None:
    from qlib.workflow import R

    from tasks.core.qlib.session import QLIB_LOCK

    recorder_store = QlibRecorderStore(lock=QLIB_LOCK, artifact_root=qlib_initialised / "mlruns")
    repo = QlibModelRepository(models_dir=qlib_initialised, use_qlib_recorder=True, recorder=recorder_store)
    try:
        metadata = seed_metadata("lgbm_001", experiment_name="alpha158_lgbm",
                                 hyperparameters={"learning_rate": 0.1, "num_leaves": 31}, IC=0.05, ICIR=1.2)
        await repo.save_model({"booster": "trees"}, metadata)
        recorder_id = metadata.qlib_recorder_id
        assert recorder_id and (await repo.get_model_metadata("lgbm_001")).qlib_recorder_id == recorder_id

        recorder = R.get_recorder(recorder_id=recorder_id, experiment_name="alpha158_lgbm")
        assert recorder.load_object("trained_model") == {"booster": "trees"}
        assert {"learning_rate": "0.1", "num_leaves": "31"}.items() <= recorder.list_params().items()
        assert recorder.list_metrics() == {"IC": 0.05, "ICIR": 1.2}
        assert recorder.list_tags()["qmp_model_id"] == "lgbm_001"
        assert (await repo.load_model("lgbm_001"))[0] == {"booster": "trees"}
        assert (await repo.load_model("lgbm_001", source="recorder"))[0] == {"booster": "trees"}

        recorder.save_objects(trained_model={"booster": "tampered"})
        with pytest.raises(RecorderMismatchError):
            await repo.load_model("lgbm_001")
        await repo.delete_model("lgbm_001")
        assert recorder_id not in R.list_recorders(experiment_name="alpha158_lgbm")
        assert not (tmp_path / "mlruns").exists() and (qlib_initialised / "mlruns" / "alpha158_lgbm").is_dir()
    finally:
        repo.close()
