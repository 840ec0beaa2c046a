"""Artifacts under an s3:// root on a real S3-compatible HTTP server: layout, integrity, deletion, cleanup."""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry import CorruptedArtifactError, DuplicateVersionError, ModelRegistry, load_settings
from tests.registry.registry_helpers import metadata

MODEL = {"weights": [0.1, 0.2, 0.3], "kind": "linear"}


def _key(registry: ModelRegistry, model_id: str, name: str = "model.pkl") -> str:
    return f"{registry.artifacts.location}/{model_id}/{name}"


def test_artifacts_live_under_the_s3_root_with_checksum_size_and_snapshot(registry: ModelRegistry) -> None:
    model_id = registry.register_model(MODEL, metadata("alpha", version="2.1.0", ic_mean=0.03))
    fs = registry.artifacts.fs
    info = registry.get_model_info(model_id)
    data = fs.cat_file(_key(registry, model_id))
    assert info.model_path == _key(registry, model_id) and info.metadata_path == _key(registry, model_id, "metadata.json")
    assert info.checksum == hashlib.sha256(data).hexdigest() and info.size_bytes == len(data)
    snapshot = json.loads(fs.cat_file(info.metadata_path))
    assert snapshot["model_id"] == model_id and snapshot["sha256"] == info.checksum
    assert [p.name for p in registry.artifacts.entries()] == [model_id]
    assert not registry.registry_dir.joinpath(model_id).exists()
    assert registry.get_model(model_id) == MODEL


def test_tampered_object_is_never_unpickled(registry: ModelRegistry) -> None:
    model_id = registry.register_model(MODEL, metadata())
    registry.artifacts.fs.pipe_file(_key(registry, model_id), pickle.dumps({"weights": [9.9]}))
    with pytest.raises(CorruptedArtifactError, match="checksum"):
        registry.get_model(model_id)
    with pytest.raises(CorruptedArtifactError):
        registry.set_production_model(model_id)


def test_missing_object_raises_corrupted_artifact_error(registry: ModelRegistry) -> None:
    model_id = registry.register_model(MODEL, metadata())
    registry.artifacts.fs.rm_file(_key(registry, model_id))
    registry.artifacts.fs.invalidate_cache()
    with pytest.raises(CorruptedArtifactError, match="missing"):
        registry.get_model(model_id)


def test_duplicate_version_leaves_only_the_first_models_keys(registry: ModelRegistry) -> None:
    registry.register_model(MODEL, metadata("m", version="1.0.0"))
    with pytest.raises(DuplicateVersionError):
        registry.register_model({"other": True}, metadata("m", version="1.0.0"))
    assert [p.name for p in registry.artifacts.entries()] == ["m_v1.0.0"]
    assert registry.get_model("m_v1.0.0") == MODEL


def test_delete_removes_the_keys_and_keeps_history(registry: ModelRegistry) -> None:
    gone = registry.register_model(MODEL, metadata("m"))
    keep = registry.register_model(MODEL, metadata("m"))
    registry.delete_model(gone)
    assert [p.name for p in registry.artifacts.entries()] == [keep]
    assert [e.event for e in registry.history(model_id=gone)] == ["registered", "deleted"]


def test_purge_deletes_the_model_object_and_keeps_the_snapshot(registry: ModelRegistry) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    old = registry.register_model(MODEL, metadata("alpha", training_date="2024-01-01"))
    registry.archive_stale(max_age_days=30, keep_last=0, now=now)
    result = registry.archive_stale(max_age_days=30, keep_last=0, purge_archived_after_days=7, now=now + timedelta(days=8))
    assert result.purged_ids == [old] and result.bytes_reclaimed == registry.get_model_info(old).size_bytes
    fs = registry.artifacts.fs
    fs.invalidate_cache()
    assert not fs.exists(_key(registry, old)) and fs.exists(_key(registry, old, "metadata.json"))


def test_orphan_sweep_removes_unowned_prefixes_after_the_grace_period(registry: ModelRegistry) -> None:
    owned = registry.register_model(MODEL, metadata("alpha"))
    fs = registry.artifacts.fs
    root = registry.artifacts.location
    fs.pipe_file(f"{root}/alpha_v9.0.0/model.pkl", b"x" * 100)
    fs.pipe_file(f"{root}/.staging/feedbeef/model.pkl", b"y" * 100)
    fs.pipe_file(f"{root}/mlruns_v1/other.txt", b"foreign")  # not the registry's layout: never swept

    recent = registry.sweep_orphans(now=datetime.now(UTC))
    assert recent.removed == {} and sorted(recent.kept_recent) == [".staging/feedbeef", "alpha_v9.0.0"]
    preview = registry.sweep_orphans(now=datetime.now(UTC) + timedelta(hours=2), dry_run=True)
    assert preview.removed == {".staging/feedbeef": 100, "alpha_v9.0.0": 100}
    swept = registry.sweep_orphans(now=datetime.now(UTC) + timedelta(hours=2))
    assert swept.removed == preview.removed
    assert sorted(p.name for p in registry.artifacts.entries()) == [owned, "mlruns_v1"]
    assert registry.get_model(owned) == MODEL


def test_second_registry_on_the_same_database_and_bucket_shares_the_models(
    registry: ModelRegistry, database_url: str, s3_uri: str, s3_options: dict[str, Any], tmp_path: Path
) -> None:
    model_id = registry.register_model(MODEL, metadata())
    with ModelRegistry(tmp_path / "other_machine", database_url, artifact_uri=registry.artifacts.location,
                       storage_options=s3_options) as other:
        assert other.get_model(model_id) == MODEL
        second = other.register_model({"from": "other"}, metadata())
    assert registry.get_model(second) == {"from": "other"}


def test_settings_name_the_artifact_root_and_its_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_uri: str, s3_options: dict[str, Any]
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "reg"))
    monkeypatch.setenv("QMP_ARTIFACT_URI", s3_uri)
    monkeypatch.setenv("QMP_ARTIFACT_STORAGE_OPTIONS", json.dumps(s3_options))
    monkeypatch.setenv("QMP_ARTIFACT_COMPRESSION", "zstd")
    assert load_settings().artifact_uri == s3_uri
    with ModelRegistry.from_settings() as reg:
        model_id = reg.register_model(MODEL, metadata())
        info = reg.get_model_info(model_id)
        assert info.model_path.startswith(s3_uri) and info.compression == "zstd"
        assert reg.get_model(model_id) == MODEL
        assert "artifact_uri" in repr(reg)
