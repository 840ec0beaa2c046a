"""Artifact files: staged in a temporary directory, fsynced, published by an atomic rename, verified on load."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from registry.errors import CorruptedArtifactError, InvalidModelError

MODEL_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
STAGING_DIR = ".staging"
CHUNK = 1 << 20


@dataclass
class StagedArtifact:
    """A model file written and fsynced under the staging area, not yet visible under its model id."""

    path: Path
    sha256: str
    size: int


class _HashingWriter:
    """File-like sink that hashes and counts what pickle writes through it."""

    def __init__(self, sink: BinaryIO):
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.sink.write(data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalArtifactStore:
    """`{root}/{model_id}/model.pkl` + `metadata.json`, as in the seed's layout."""

    def __init__(self, root: Path):
        self.root = root
        self.staging = root / STAGING_DIR

    def model_dir(self, model_id: str) -> Path:
        return self.root / model_id

    def model_file(self, model_id: str) -> Path:
        return self.root / model_id / MODEL_FILE

    def metadata_file(self, model_id: str) -> Path:
        return self.root / model_id / METADATA_FILE

    def _new_staging_dir(self) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / uuid.uuid4().hex
        path.mkdir()
        return path

    def stage_object(self, model: Any) -> StagedArtifact:
        """Pickle `model` into a new staging directory; InvalidModelError if it cannot be pickled."""
        path = self._new_staging_dir()
        try:
            with open(path / MODEL_FILE, "wb") as sink:
                writer = _HashingWriter(sink)
                pickle.dump(model, writer, protocol=pickle.HIGHEST_PROTOCOL)
                sink.flush()
                os.fsync(sink.fileno())
        except Exception as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise InvalidModelError(f"model of type {type(model).__name__} cannot be pickled: {exc}") from exc
        return StagedArtifact(path, writer.digest.hexdigest(), writer.size)

    def stage_file(self, source: Path) -> StagedArtifact:
        """Copy an existing model file into a new staging directory (the registry owns its artifacts)."""
        path = self._new_staging_dir()
        try:
            with open(source, "rb") as src, open(path / MODEL_FILE, "wb") as sink:
                writer = _HashingWriter(sink)
                while chunk := src.read(CHUNK):
                    writer.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise InvalidModelError(f"cannot copy model file {str(source)!r}: {exc.strerror or exc}") from exc
        return StagedArtifact(path, writer.digest.hexdigest(), writer.size)

    def discard(self, staged: StagedArtifact) -> None:
        shutil.rmtree(staged.path, ignore_errors=True)

    def publish(self, staged: StagedArtifact, model_id: str, snapshot: dict[str, Any]) -> Path:
        """Write the metadata snapshot, then rename the staged directory to its model id."""
        metadata_path = staged.path / METADATA_FILE
        with open(metadata_path, "w", encoding="utf-8") as sink:
            json.dump(snapshot, sink, indent=2, default=str, sort_keys=True)
            sink.flush()
            os.fsync(sink.fileno())
        final = self.model_dir(model_id)
        if final.exists():
            # No row owns it (the caller holds the name lock and the id is new): a crash leftover.
            shutil.rmtree(final)
        os.rename(staged.path, final)
        _fsync_dir(self.root)
        staged.path = final
        return final

    def unpublish(self, staged: StagedArtifact) -> None:
        """Undo `publish` when the transaction that was to own the directory did not commit."""
        if staged.path.parent == self.staging or not staged.path.exists():
            return
        target = self.staging / uuid.uuid4().hex
        os.rename(staged.path, target)
        staged.path = target

    def read_verified(self, model_id: str, sha256: str, size: int) -> bytes:
        """The model file's bytes, after checking size and sha256 against the database's record."""
        path = self.model_file(model_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptedArtifactError(f"artifact of model {model_id!r} is missing: {path}") from None
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise CorruptedArtifactError(
                f"artifact of model {model_id!r} does not match its checksum "
                f"(expected sha256 {sha256[:12]}... and {size} bytes, found {len(data)} bytes): {path}"
            )
        return data

    def verify(self, model_id: str, sha256: str, size: int) -> None:
        """Raise CorruptedArtifactError unless the model file matches, without keeping its bytes."""
        path = self.model_file(model_id)
        digest = hashlib.sha256()
        seen = 0
        try:
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    seen += len(chunk)
        except FileNotFoundError:
            raise CorruptedArtifactError(f"artifact of model {model_id!r} is missing: {path}") from None
        if seen != size or digest.hexdigest() != sha256:
            raise CorruptedArtifactError(
                f"artifact of model {model_id!r} does not match its checksum (expected {size} bytes, found {seen}): {path}"
            )

    def delete(self, model_id: str) -> int:
        """Remove a model's directory; returns the bytes freed."""
        path = self.model_dir(model_id)
        freed = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
        shutil.rmtree(path, ignore_errors=True)
        return freed

    def delete_model_file(self, model_id: str) -> int:
        """Remove only the model file (purge), keeping the metadata snapshot; returns the bytes freed."""
        path = self.model_file(model_id)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def entries(self) -> list[Path]:
        """Every model directory and staging directory on disk (for the orphan sweep)."""
        found = [p for p in self.root.iterdir() if p.is_dir() and p.name != STAGING_DIR] if self.root.exists() else []
        if self.staging.exists():
            found.extend(p for p in self.staging.iterdir() if p.is_dir())
        return found
