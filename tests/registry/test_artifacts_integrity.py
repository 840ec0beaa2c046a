"""Artifacts on disk: layout, checksums verified on every load, copies of model files, allowed paths."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from registry import CorruptedArtifactError, DuplicateVersionError, ModelPathNotAllowedError, ModelRegistry
from registry.errors import ArtifactStorageError, InvalidModelError
from tests.registry.registry_helpers import leftover_dirs, metadata


class _WritesMarkerWhenUnpickled:
    """Unpickling this runs `open(marker, "w")`: proof that a file was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_artifact_lives_at_registry_dir_model_id_with_checksum_and_size(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata(version="1.0", ic_mean=0.05))
    folder = registry.registry_dir / model_id
    data = (folder / "model.pkl").read_bytes()
    info = registry.get_model_info(model_id)
    assert info.checksum == hashlib.sha256(data).hexdigest() and info.size_bytes == len(data)
    assert pickle.loads(data) == model
    snapshot = json.loads((folder / "metadata.json").read_text())
    assert snapshot["model_id"] == model_id and snapshot["version"] == "1.0"
    assert snapshot["performance_metrics"] == {"ic_mean": 0.05} and snapshot["sha256"] == info.checksum
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "model.pkl"]
    assert not any((registry.registry_dir / ".staging").iterdir())


def test_tampered_model_file_raises_corrupted_artifact_error(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    path = registry.registry_dir / model_id / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [9.9]}))
    with pytest.raises(CorruptedArtifactError, match=model_id):
        registry.get_model(model_id)
    with pytest.raises(CorruptedArtifactError):
        registry.verify_artifact(model_id)


def test_same_size_tampering_is_caught_by_the_checksum(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    path = registry.registry_dir / model_id / "model.pkl"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptedArtifactError, match="checksum"):
        registry.get_model(model_id)


def test_tampered_pickle_is_never_unpickled(registry: ModelRegistry, model: Any, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    model_id = registry.register_model(model, metadata())
    (registry.registry_dir / model_id / "model.pkl").write_bytes(pickle.dumps(_WritesMarkerWhenUnpickled(marker)))
    with pytest.raises(CorruptedArtifactError):
        registry.get_model(model_id)
    with pytest.raises(CorruptedArtifactError):
        registry.set_production_model(model_id)
    assert not marker.exists()


def test_missing_model_file_raises_corrupted_artifact_error(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    (registry.registry_dir / model_id / "model.pkl").unlink()
    with pytest.raises(CorruptedArtifactError, match="missing"):
        registry.get_model(model_id)


def test_corrupted_model_cannot_be_promoted(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    (registry.registry_dir / model_id / "model.pkl").write_bytes(b"garbage")
    with pytest.raises(CorruptedArtifactError):
        registry.set_production_model(model_id)
    assert registry.get_production_model("lgbm_alpha158") is None


def test_model_path_is_copied_in_and_the_source_is_left_untouched(registry: ModelRegistry, tmp_path: Path) -> None:
    source = tmp_path / "trained" / "model.pkl"
    source.parent.mkdir()
    source.write_bytes(pickle.dumps({"trained": True}))
    before = source.read_bytes()
    model_id = registry.register_model(None, metadata(), model_path=str(source))
    assert source.read_bytes() == before
    copy = registry.registry_dir / model_id / "model.pkl"
    assert copy.read_bytes() == before and not copy.samefile(source)
    assert registry.get_model_info(model_id).checksum == hashlib.sha256(before).hexdigest()
    source.write_bytes(pickle.dumps({"trained": "overwritten"}))
    os.remove(source)
    assert registry.get_model(model_id) == {"trained": True}


def test_model_path_outside_allowed_dirs_is_refused_with_nothing_written(
    tmp_path: Path, database_url: str
) -> None:
    allowed = tmp_path / "allowed"
    elsewhere = tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    outside = elsewhere / "model.pkl"
    outside.write_bytes(pickle.dumps({"x": 1}))
    (allowed / "escape.pkl").symlink_to(outside)
    with ModelRegistry(tmp_path / "reg", database_url, allowed_source_dirs=[allowed]) as reg:
        for path in (outside, allowed / ".." / "elsewhere" / "model.pkl", allowed / "escape.pkl"):
            with pytest.raises(ModelPathNotAllowedError, match="outside the allowed"):
                reg.register_model(None, metadata(), model_path=path)
        assert reg.list_models() == [] and leftover_dirs(reg) == []
        inside = allowed / "model.pkl"
        inside.write_bytes(pickle.dumps({"x": 2}))
        assert reg.get_model(reg.register_model(None, metadata(), model_path=inside)) == {"x": 2}


def test_system_files_are_outside_the_default_allowed_dirs(registry: ModelRegistry) -> None:
    with pytest.raises(ModelPathNotAllowedError):
        registry.register_model(None, metadata(), model_path="/etc/passwd")
    assert registry.list_models() == []


def test_model_object_wins_over_nothing_and_is_independent_of_later_mutation(
    registry: ModelRegistry
) -> None:
    live = {"weights": [1, 2]}
    model_id = registry.register_model(live, metadata())
    live["weights"].append(3)
    assert registry.get_model(model_id) == {"weights": [1, 2]}


@pytest.mark.parametrize("failing", ["model.pkl", "metadata.json", "staged directory", "root"])
def test_failed_background_fsync_fails_the_registration_with_nothing_left(
    registry: ModelRegistry, model: Any, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The fsyncs run on background threads while the row is written; a failure there still stops the commit."""
    import registry.artifacts.local as artifacts

    real_sync = artifacts._sync

    def sync_or_fail(fd: int, path: Path) -> None:
        which = {path.name, "staged directory" if path.parent.name == artifacts.STAGING_DIR else "",
                 "root" if path == registry.registry_dir else ""}
        if failing in which:
            os.close(fd)
            raise OSError(5, "Input/output error", str(path))
        real_sync(fd, path)

    monkeypatch.setattr(artifacts, "_sync", sync_or_fail)
    with pytest.raises(OSError, match="Input/output error"):
        registry.register_model(model, metadata(version="1.0"))
    assert registry.list_models() == []
    assert registry.history() == []
    assert leftover_dirs(registry) == []
    monkeypatch.setattr(artifacts, "_sync", real_sync)
    model_id = registry.register_model(model, metadata(version="1.0"))
    assert registry.get_model(model_id) == model


@pytest.mark.parametrize("leftover", ["full directory", "empty directory", "file"])
def test_crash_leftover_under_the_new_model_id_is_replaced_by_the_registered_files(
    registry: ModelRegistry, model: Any, leftover: str
) -> None:
    """A directory (or file) under the id a registration gets, owned by no row, is what a crash left behind."""
    target = registry.registry_dir / "lgbm_alpha158_v1.0"
    if leftover == "file":
        registry.registry_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"stray")
    else:
        target.mkdir(parents=True)
        if leftover == "full directory":
            (target / "model.pkl").write_bytes(b"half-written")
    model_id = registry.register_model(model, metadata(version="1.0"))
    assert registry.registry_dir / model_id == target
    assert registry.get_model(model_id) == model
    assert sorted(p.name for p in target.iterdir()) == ["metadata.json", "model.pkl"]
    assert json.loads((target / "metadata.json").read_text())["model_id"] == model_id
    assert not any((registry.registry_dir / ".staging").iterdir())


def test_registering_a_taken_version_leaves_the_existing_model_files_untouched(registry: ModelRegistry) -> None:
    first = registry.register_model({"first": True}, metadata(version="1.0"))
    before = {p.name: p.read_bytes() for p in (registry.registry_dir / first).iterdir()}
    with pytest.raises(DuplicateVersionError):
        registry.register_model({"second": True}, metadata(version="1.0"))
    assert {p.name: p.read_bytes() for p in (registry.registry_dir / first).iterdir()} == before
    assert registry.get_model(first) == {"first": True}
    assert not any((registry.registry_dir / ".staging").iterdir())


def test_a_storage_failure_is_reported_as_storage_not_as_an_invalid_model(registry: ModelRegistry) -> None:
    (registry.registry_dir / ".staging").write_text("not a directory")  # every write under it fails
    with pytest.raises(ArtifactStorageError, match="artifact storage") as caught:
        registry.register_model({"w": 1}, metadata(ic_mean=0.01))
    assert not isinstance(caught.value, InvalidModelError)
    assert registry.list_models() == []
