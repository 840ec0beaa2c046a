"""What every artifact store offers (the local directory and any fsspec URL), the one check of a stored
artifact against the database's record, and the one translation of storage failures into registry errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any, Protocol

import orjson

from registry.artifacts.codec import Compression
from registry.errors import ArtifactStorageError, CorruptedArtifactError

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




class ArtifactStore(Protocol):
    """`{root}/{model_id}/model.pkl` + `metadata.json`, staged, published under the name lock, verified on read."""

    @property
    def root(self) -> PurePath:
        """The root as a path (for an object store, the bucket and prefix)."""

    @property
    def location(self) -> str:
        """The root as a path or URL, for messages and recorded artifact locations."""

    def model_file(self, model_id: str) -> str: ...

    def stage_object(self, model: Any) -> StagedArtifact: ...

    def stage_file(self, source: Path) -> StagedArtifact: ...

    def discard(self, staged: StagedArtifact) -> None: ...

    def start_publishing(self, staged: StagedArtifact, model_id: str, snapshot: dict[str, Any]) -> None: ...

    def publish(self, staged: StagedArtifact, model_id: str) -> None: ...

    def unpublish(self, staged: StagedArtifact) -> None: ...

    def read_verified(self, model_id: str, sha256: str, size: int) -> bytes: ...

    def verify(self, model_id: str, sha256: str, size: int) -> None: ...

    def delete(self, model_id: str) -> int: ...

    def delete_model_file(self, model_id: str) -> int: ...

    def entries(self) -> list[PurePath]: ...

    def entry_state(self, entry: PurePath) -> EntryState | None: ...

    def remove_entry(self, entry: PurePath) -> None: ...


def storage_error(exc: OSError, doing: str, location: str) -> ArtifactStorageError:
    """A storage failure (full disk, permission denied, unreachable bucket) as the registry reports it."""
    detail = exc.strerror or str(exc) or type(exc).__name__
    return ArtifactStorageError(f"cannot {doing} in artifact storage {location}: {detail}")


def check_artifact(
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]], model_id: str, sha256: str, size: int,
    where: str, *, keep: bool,
) -> bytes:
    """Stream a stored artifact through sha256, compare with the recorded checksum and size, and return its
    bytes when `keep` (else b""): CorruptedArtifactError when it is missing or differs."""
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    seen = 0
    try:
        with open_stream() as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                seen += len(chunk)
                if keep:
                    chunks.append(chunk)
    except FileNotFoundError:
        raise CorruptedArtifactError(f"artifact of model {model_id!r} is missing: {where}") from None
    except OSError as exc:
        raise storage_error(exc, f"read the artifact of model {model_id!r}", where) from exc
    if seen != size or digest.hexdigest() != sha256:
        raise CorruptedArtifactError(
            f"artifact of model {model_id!r} does not match its checksum "
            f"(expected sha256 {sha256[:12]}... and {size} bytes, found {seen} bytes): {where}"
        )
    return b"".join(chunks)
