"""Artifact files: staged in a temporary directory, fsynced, published by an atomic rename, verified on load.

The fsyncs of the staged files run on a small thread pool while the registration talks to the database;
`publish` waits for them before the rename, and the rename's own fsync finishes before the commit, so a
committed row never points at files that a power cut could take away.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import orjson

from registry.codec import Compression, encode
from registry.errors import CorruptedArtifactError, InvalidModelError

MODEL_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
STAGING_DIR = ".staging"
CHUNK = 1 << 20


@dataclass
class StagedArtifact:
    """A model file written (and made durable) under the staging area, not yet visible under its model id.

    `sha256` and `size` describe the stored bytes (compressed when `compression` is set);
    `original_size` is the pickle's size before compression.
    """

    path: PurePath
    sha256: str
    size: int
    original_size: int = 0
    compression: Compression | None = None
    syncing: list[Future[None]] = field(default_factory=list)  # fsyncs still running in the background

    def settle(self) -> None:
        """Wait for the background fsyncs; raises the OSError of the first that failed."""
        pending, self.syncing = self.syncing, []
        errors = [exc for exc in (f.exception() for f in pending) if exc is not None]
        if errors:
            raise errors[0]


@dataclass(frozen=True)
class EntryState:
    """What an artifact directory (or staging entry) holds, for the orphan sweep."""

    names: frozenset[str]
    size: int
    touched: float  # newest modification time of the entry or anything in it (epoch seconds)


def snapshot_bytes(snapshot: dict[str, Any]) -> bytes:
    """The metadata.json body: indented, keys sorted, values that JSON lacks as strings."""
    return orjson.dumps(snapshot, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _fsync(path: Path) -> None:
    """fsync a file or a directory by path (a directory's fsync makes its new entries durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of the parent's threads: it starts its own pool


os.register_at_fork(after_in_child=_forget_pool)


def _in_background(path: Path) -> Future[None]:
    """Start fsyncing `path` on the fsync threads (fsync releases the GIL)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qmp-fsync")
    return _pool.submit(_fsync, path)


class LocalArtifactStore:
    """`{root}/{model_id}/model.pkl` + `metadata.json`, as in the seed's layout."""

    def __init__(self, root: Path, compression: Compression | None = None):
        self.root = root
        self.staging = root / STAGING_DIR
        self.compression = compression

    @property
    def location(self) -> str:
        """Where the artifacts live, for messages and ModelInfo paths."""
        return str(self.root)

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
                encoded = encode(sink, self.compression, model=model)
        except Exception as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise InvalidModelError(f"model of type {type(model).__name__} cannot be pickled: {exc}") from exc
        return self._staged(path, encoded)

    def stage_file(self, source: Path) -> StagedArtifact:
        """Copy an existing model file into a new staging directory (the registry owns its artifacts)."""
        path = self._new_staging_dir()
        try:
            with open(source, "rb") as src, open(path / MODEL_FILE, "wb") as sink:
                encoded = encode(sink, self.compression, source=src)
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise InvalidModelError(f"cannot copy model file {str(source)!r}: {exc.strerror or exc}") from exc
        return self._staged(path, encoded)

    def _staged(self, path: Path, encoded: Any) -> StagedArtifact:
        staged = StagedArtifact(path, encoded.sha256, encoded.size, encoded.original_size, self.compression)
        staged.syncing.append(_in_background(path / MODEL_FILE))
        return staged

    def discard(self, staged: StagedArtifact) -> None:
        with contextlib.suppress(OSError):
            staged.settle()
        shutil.rmtree(staged.path, ignore_errors=True)

    def write_snapshot(self, staged: StagedArtifact, snapshot: dict[str, Any]) -> None:
        """Write metadata.json next to the staged model; it and the directory's entries are fsynced in the
        background (`publish` waits for them)."""
        directory = Path(staged.path)
        (directory / METADATA_FILE).write_bytes(snapshot_bytes(snapshot))
        staged.syncing += [_in_background(directory / METADATA_FILE), _in_background(directory)]

    def publish(self, staged: StagedArtifact, model_id: str) -> Path:
        """Once the staged files are durable, rename the staged directory to its model id (and fsync that)."""
        staged.settle()
        final = self.model_dir(model_id)
        if final.exists():
            # No row owns it (the caller holds the name lock and the id is new): a crash leftover.
            shutil.rmtree(final)
        os.rename(staged.path, final)
        _fsync(self.root)
        staged.path = final
        return final

    def unpublish(self, staged: StagedArtifact) -> None:
        """Undo `publish` when the transaction that was to own the directory did not commit."""
        if staged.path.parent == self.staging or not Path(staged.path).exists():
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

    def entry_state(self, entry: PurePath) -> EntryState | None:
        """Names, total size and newest change inside `entry` (None once it is gone)."""
        path = Path(entry)
        try:
            children = list(path.iterdir())
            touched = max([path.stat().st_mtime, *(child.stat().st_mtime for child in children)])
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        except FileNotFoundError:
            return None
        return EntryState(frozenset(child.name for child in children), size, touched)

    def remove_entry(self, entry: PurePath) -> None:
        """Remove an orphan entry found by `entries`."""
        shutil.rmtree(entry, ignore_errors=True)

    def entries(self) -> list[Path]:
        """Every model directory and staging directory on disk (for the orphan sweep)."""
        found = [p for p in self.root.iterdir() if p.is_dir() and p.name != STAGING_DIR] if self.root.exists() else []
        if self.staging.exists():
            found.extend(p for p in self.staging.iterdir() if p.is_dir())
        return found
