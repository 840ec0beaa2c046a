"""Artifacts in object storage through fsspec (`s3://bucket/prefix`): staged under a temporary key, then published.

The layout under the root is the local one: `{root}/{model_id}/model.pkl` + `metadata.json`, and
`{root}/.staging/{uuid}/` for registrations in flight. Object stores have no atomic directory rename;
each object is written whole (an upload is visible completely or not at all), the model is copied to its
final key before the snapshot, and the database row that makes a model visible commits only after both.
Every load checks size and sha256 against the database, as on a local disk.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

from registry.artifacts.codec import Compression, encode
from registry.artifacts.store import (
    METADATA_FILE,
    MODEL_FILE,
    STAGING_DIR,
    EntryState,
    StagedArtifact,
    check_artifact,
    snapshot_bytes,
    storage_error,
)
from registry.errors import InvalidModelError


class ObjectArtifactStore:
    """The artifact store for any fsspec URL (S3-compatible storage in production), same interface as the local one."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None, compression: Compression | None = None):
        self.uri = uri.rstrip("/")
        fs, root = fsspec.core.url_to_fs(self.uri, **(storage_options or {}))
        self.fs: AbstractFileSystem = fs
        self.root = PurePosixPath(root)
        self.staging = self.root / STAGING_DIR
        self.compression = compression

    @property
    def location(self) -> str:
        """The root URL, for messages and ModelInfo paths."""
        return self.uri

    def _url(self, key: PurePath) -> str:
        return f"{self.uri}/{key.relative_to(self.root).as_posix()}"

    def model_dir(self, model_id: str) -> PurePosixPath:
        return self.root / model_id

    def model_file(self, model_id: str) -> str:
        return self._url(self.root / model_id / MODEL_FILE)

    def metadata_file(self, model_id: str) -> str:
        return self._url(self.root / model_id / METADATA_FILE)

    def _stage(self, what: str, **source: Any) -> StagedArtifact:
        path = self.staging / uuid.uuid4().hex
        try:
            with self.fs.open(str(path / MODEL_FILE), "wb") as sink:
                encoded = encode(sink, self.compression, **source)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._remove(path)
            raise storage_error(exc, f"write {what}", self.uri) from exc
        except Exception as exc:
            self._remove(path)
            raise InvalidModelError(f"model of type {what} cannot be pickled: {exc}") from exc
        return StagedArtifact(path, encoded.sha256, encoded.size, encoded.original_size, self.compression)

    def stage_object(self, model: Any) -> StagedArtifact:
        """Pickle `model` into a new staging prefix; InvalidModelError if it cannot be pickled."""
        return self._stage(type(model).__name__, model=model)

    def stage_file(self, source: Path) -> StagedArtifact:
        """Upload an existing model file into a new staging prefix."""
        try:
            with open(source, "rb") as src:
                return self._stage(repr(str(source)), source=src)
        except OSError as exc:
            raise InvalidModelError(f"cannot copy model file {str(source)!r}: {exc.strerror or exc}") from exc

    def discard(self, staged: StagedArtifact) -> None:
        self._remove(staged.path)

    def _remove(self, prefix: PurePath) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(str(prefix), recursive=True)
        self.fs.invalidate_cache(str(prefix))

    def _move(self, source: PurePath, target: PurePath) -> None:
        """Copy the model, then the snapshot (server side), then delete the source keys."""
        for name in (MODEL_FILE, METADATA_FILE):
            if self.fs.exists(str(source / name)):
                self.fs.copy(str(source / name), str(target / name))
        self._remove(source)

    def start_publishing(self, staged: StagedArtifact, model_id: str, snapshot: dict[str, Any]) -> None:
        """Write the metadata snapshot next to the staged model (`publish` then copies both)."""
        self.fs.pipe_file(str(staged.path / METADATA_FILE), snapshot_bytes(snapshot))

    def publish(self, staged: StagedArtifact, model_id: str) -> None:
        """Copy the staged model and its snapshot to the model id's keys."""
        final = self.model_dir(model_id)
        if self.fs.exists(str(final)):
            self._remove(final)  # no row owns it (the caller holds the name lock and the id is new): a leftover
        self._move(staged.path, final)
        staged.path = final

    def unpublish(self, staged: StagedArtifact) -> None:
        """Move published keys back under staging when the transaction that was to own them did not commit."""
        if staged.path.parent == self.staging or not self.fs.exists(str(staged.path / MODEL_FILE)):
            return
        target = self.staging / uuid.uuid4().hex
        self._move(staged.path, target)
        staged.path = target

    def _open(self, model_id: str) -> Any:
        return self.fs.open(str(self.model_dir(model_id) / MODEL_FILE), "rb")

    def read_verified(self, model_id: str, sha256: str, size: int) -> bytes:
        """The stored bytes of the model object, after checking size and sha256 against the database's record."""
        return check_artifact(lambda: self._open(model_id), model_id, sha256, size, self.model_file(model_id),
                              keep=True)

    def verify(self, model_id: str, sha256: str, size: int) -> None:
        """Raise CorruptedArtifactError unless the stored object matches, streaming it."""
        check_artifact(lambda: self._open(model_id), model_id, sha256, size, self.model_file(model_id), keep=False)

    def _listing(self, prefix: PurePath) -> dict[str, dict[str, Any]]:
        self.fs.invalidate_cache(str(prefix))
        try:
            found: dict[str, dict[str, Any]] = self.fs.find(str(prefix), detail=True)
        except FileNotFoundError:
            return {}
        return found

    def sizes(self, prefix: PurePath) -> dict[str, int]:
        """Key -> size of every object under `prefix`."""
        return {key: int(info.get("size") or 0) for key, info in self._listing(prefix).items()}

    def entry_state(self, entry: PurePath) -> EntryState | None:
        """Names, total size and newest upload under `entry` (None once it holds nothing)."""
        listing = self._listing(entry)
        if not listing:
            return None
        names = frozenset(PurePosixPath(key).relative_to(entry).parts[0] for key in listing)
        size = sum(int(info.get("size") or 0) for info in listing.values())
        return EntryState(names, size, max(_modified(info) for info in listing.values()))

    def remove_entry(self, entry: PurePath) -> None:
        """Remove an orphan entry found by `entries`."""
        self._remove(entry)

    def delete(self, model_id: str) -> int:
        """Remove a model's keys; returns the bytes freed."""
        prefix = self.model_dir(model_id)
        freed = sum(self.sizes(prefix).values())
        self._remove(prefix)
        return freed

    def delete_model_file(self, model_id: str) -> int:
        """Remove only the model object (purge), keeping the metadata snapshot; returns the bytes freed."""
        key = str(self.model_dir(model_id) / MODEL_FILE)
        try:
            size = int(self.fs.size(key) or 0)
            self.fs.rm_file(key)
        except FileNotFoundError:
            return 0
        self.fs.invalidate_cache(key)
        return size

    def entries(self) -> list[PurePath]:
        """Every model prefix and staging prefix in the store."""
        keys = self.sizes(self.root)
        found: set[PurePath] = set()
        for key in keys:
            relative = PurePosixPath(key).relative_to(self.root)
            parts = relative.parts
            if parts[0] == STAGING_DIR and len(parts) > 2:
                found.add(self.staging / parts[1])
            elif parts[0] != STAGING_DIR and len(parts) > 1:
                found.add(self.root / parts[0])
        return sorted(found)


def _modified(info: dict[str, Any]) -> float:
    """An object's modification time in epoch seconds, whatever the filesystem calls it."""
    value = info.get("LastModified", info.get("mtime", info.get("last_modified", info.get("created", 0))))
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value or 0)
