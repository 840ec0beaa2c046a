"""Artifact files: staged in a temporary directory, fsynced, published by an atomic rename, verified on load.

The fsyncs (of the model file, its metadata snapshot, their directory and the root after the rename to the
model id) run on a small thread pool while the registration locks its name and writes its row; `publish`
waits for all of them before the commit, so a committed row never points at files a power cut could take.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path, PurePath
from typing import IO, Any

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


def _open_binary(path: str) -> IO[bytes]:
    return open(path, "rb")


def _sync(fd: int, path: Path) -> None:
    """fsync an open file or directory (a directory's fsync makes its new entries durable), then close it.

    By descriptor, so that a rename meanwhile does not matter; `path` is what it was opened as."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_later(fd: int, path: Path) -> Future[None]:
    """Run `_sync` on the fsync threads (fsync releases the GIL)."""
    return _pool().submit(_sync, fd, path)


def _sync_now(path: Path) -> None:
    _sync(os.open(path, os.O_RDONLY), path)


_threads: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _threads
    _threads = None  # a forked child has none of the parent's threads: it starts its own pool


os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    """The fsync threads (one pool per process)."""
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qmp-fsync")
    return _threads


class LocalArtifactStore:
    """`{root}/{model_id}/model.pkl` + `metadata.json`, as in the original registry API's layout."""

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

    def model_file(self, model_id: str) -> str:
        return str(self.root / model_id / MODEL_FILE)

    def metadata_file(self, model_id: str) -> Path:
        return self.root / model_id / METADATA_FILE

    def _new_staging_dir(self) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / uuid.uuid4().hex
        path.mkdir()
        return path

    def stage_object(self, model: Any) -> StagedArtifact:
        """Pickle `model` into a new staging directory; InvalidModelError if it cannot be pickled."""
        try:
            path = self._new_staging_dir()
        except OSError as exc:
            raise storage_error(exc, "stage a model", self.location) from exc
        try:
            with open(path / MODEL_FILE, "wb") as sink:
                encoded = encode(sink, self.compression, model=model)
                fd = os.dup(sink.fileno())
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise storage_error(exc, "write a model", self.location) from exc
        except Exception as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise InvalidModelError(f"model of type {type(model).__name__} cannot be pickled: {exc}") from exc
        return self._staged(path, encoded, fd)

    def stage_file(self, source: Path) -> StagedArtifact:
        """Copy an existing model file into a new staging directory (the registry owns its artifacts)."""
        try:
            src = open(source, "rb")  # noqa: SIM115 - closed below; a failure here is the caller's file
        except OSError as exc:
            raise InvalidModelError(f"cannot copy model file {str(source)!r}: {exc.strerror or exc}") from exc
        try:
            path = self._new_staging_dir()
        except OSError as exc:
            src.close()
            raise storage_error(exc, "stage a model", self.location) from exc
        try:
            with src, open(path / MODEL_FILE, "wb") as sink:
                encoded = encode(sink, self.compression, source=src)
                fd = os.dup(sink.fileno())
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise storage_error(exc, f"copy model file {str(source)!r}", self.location) from exc
        return self._staged(path, encoded, fd)

    def _staged(self, path: Path, encoded: Any, fd: int) -> StagedArtifact:
        """The staged file's fsync starts now, in the background: it runs while the registration locks its name."""
        staged = StagedArtifact(path, encoded.sha256, encoded.size, encoded.original_size, self.compression)
        staged.syncing.append(_sync_later(fd, path / MODEL_FILE))
        return staged

    def discard(self, staged: StagedArtifact) -> None:
        with contextlib.suppress(OSError):
            staged.settle()
        shutil.rmtree(staged.path, ignore_errors=True)

    def start_publishing(self, staged: StagedArtifact, model_id: str, snapshot: dict[str, Any]) -> None:
        """Write metadata.json next to the staged model and rename the directory to its model id; the fsyncs
        of both files, of the directory and of the root run in the background.

        The caller holds the name lock and writes the row meanwhile, then calls `publish` (or, when the row
        could not be written, `unpublish`) before its transaction ends. The rename never replaces anything:
        a directory already there (a crash leftover) stays until `publish`, once the row proves the id new.
        """
        directory = Path(staged.path)
        metadata_path = directory / METADATA_FILE
        with open(metadata_path, "wb") as sink:
            sink.write(snapshot_bytes(snapshot))
            fd = os.dup(sink.fileno())
        staged.syncing.append(_sync_later(fd, metadata_path))
        staged.syncing.append(_sync_later(os.open(directory, os.O_RDONLY), directory))  # its entries
        final = self.model_dir(model_id)
        try:
            os.rename(directory, final)  # replaces at most an empty directory, never a model's
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            return  # something is in the way: `publish` deals with it
        staged.path = final
        staged.syncing.append(_sync_later(os.open(self.root, os.O_RDONLY), self.root))

    def publish(self, staged: StagedArtifact, model_id: str) -> None:
        """Wait for `start_publishing`'s fsyncs: the files are then durable under the model id."""
        staged.settle()
        final = self.model_dir(model_id)
        if Path(staged.path) != final:
            # No row owns it (the caller holds the name lock and has just written the id's row): a crash leftover.
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            else:
                final.unlink()
            os.rename(staged.path, final)
            staged.path = final
            _sync_now(self.root)

    def unpublish(self, staged: StagedArtifact) -> None:
        """Undo `publish` when the transaction that was to own the directory did not commit."""
        with contextlib.suppress(OSError):
            staged.settle()
        if staged.path.parent == self.staging or not Path(staged.path).exists():
            return
        target = self.staging / uuid.uuid4().hex
        os.rename(staged.path, target)
        staged.path = target

    def read_verified(self, model_id: str, sha256: str, size: int) -> bytes:
        """The model file's bytes, after checking size and sha256 against the database's record."""
        path = self.model_file(model_id)
        return check_artifact(partial(_open_binary, path), model_id, sha256, size, path, keep=True)

    def verify(self, model_id: str, sha256: str, size: int) -> None:
        """Raise CorruptedArtifactError unless the model file matches, without keeping its bytes."""
        path = self.model_file(model_id)
        check_artifact(partial(_open_binary, path), model_id, sha256, size, path, keep=False)

    def delete(self, model_id: str) -> int:
        """Remove a model's directory; returns the bytes freed."""
        path = self.model_dir(model_id)
        freed = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
        shutil.rmtree(path, ignore_errors=True)
        return freed

    def delete_model_file(self, model_id: str) -> int:
        """Remove only the model file (purge), keeping the metadata snapshot; returns the bytes freed."""
        path = Path(self.model_file(model_id))
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

    def entries(self) -> list[PurePath]:
        """Every model directory and staging directory on disk (for the orphan sweep)."""
        found: list[PurePath] = (
            [p for p in self.root.iterdir() if p.is_dir() and p.name != STAGING_DIR] if self.root.exists() else []
        )
        if self.staging.exists():
            found.extend(p for p in self.staging.iterdir() if p.is_dir())
        return found
