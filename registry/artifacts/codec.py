"""Artifact encoding: pickle, optionally gzip or zstd compressed, hashed over the bytes actually stored."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol

from registry.errors import CorruptedArtifactError, UnknownCompressionError

Compression = Literal["gzip", "zstd"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd")
CHUNK = 1 << 20
GZIP_LEVEL = 6  # gzip's own default (9) costs about twice the time for a few percent
ZSTD_LEVEL = 3


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...


def check_compression(name: str | None) -> Compression | None:
    """`name` as a supported compression (None or '' or 'none' means uncompressed)."""
    if name is None or name in ("", "none"):
        return None
    if name == "gzip":
        return "gzip"
    if name == "zstd":
        return "zstd"
    raise UnknownCompressionError(f"unknown artifact compression {name!r}: use one of {', '.join(COMPRESSIONS)} or none")


@dataclass(frozen=True)
class Encoded:
    """What was written: checksum and size of the stored bytes, and the size before compression."""

    sha256: str
    size: int
    original_size: int


def _bytes_view(data: Any) -> memoryview:
    """A flat byte view of what pickle writes: protocol 5 hands large buffers over as PickleBuffer, which has no len()."""
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class _Hashing:
    """Sink wrapper that hashes and counts the stored bytes."""

    def __init__(self, sink: Sink):
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        view = _bytes_view(data)
        self.digest.update(view)
        self.size += view.nbytes
        self.sink.write(view)
        return view.nbytes

    def flush(self) -> None:
        """Nothing buffered here; compressors call it."""


class _Counting:
    """Sink wrapper that counts the bytes before compression."""

    def __init__(self, sink: Any):
        self.sink = sink
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        view = _bytes_view(data)
        self.size += view.nbytes
        self.sink.write(view)
        return view.nbytes


def _compressor(stored: _Hashing, compression: Compression | None) -> Any:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=stored, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(stored, closefd=False)  # type: ignore[arg-type]
    return None


def encode(sink: Sink, compression: Compression | None, *, model: Any = None, source: BinaryIO | None = None) -> Encoded:
    """Write `model` pickled (or the bytes of `source`) to `sink`, compressed as asked."""
    stored = _Hashing(sink)
    compressor = _compressor(stored, compression)
    plain = _Counting(compressor if compressor is not None else stored)
    try:
        if source is not None:
            while chunk := source.read(CHUNK):
                plain.write(chunk)
        else:
            pickle.dump(model, plain, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        if compressor is not None:
            compressor.close()
    return Encoded(stored.digest.hexdigest(), stored.size, plain.size)


def decode(data: bytes, compression: str | None, model_id: str) -> bytes:
    """The pickle bytes of stored (already verified) artifact bytes."""
    try:
        if compression == "gzip":
            return gzip.decompress(data)
        if compression == "zstd":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
                return reader.read()
    except Exception as exc:  # the checksum matched, so the writer produced bad bytes: still a corruption
        raise CorruptedArtifactError(f"artifact of model {model_id!r} cannot be decompressed ({compression}): {exc}") from exc
    if compression is not None:
        raise CorruptedArtifactError(f"artifact of model {model_id!r} uses unknown compression {compression!r}")
    return data
