"""Compressed artifacts: transparent on load, checksum over the stored bytes, stored and original sizes."""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest
import zstandard

from registry import CorruptedArtifactError, InvalidModelError, ModelRegistry
from tests.registry.registry_helpers import metadata

# Repetitive enough to compress well, like the float arrays and trees of a real model.
MODEL = {"weights": [0.5] * 20_000, "trees": ["split feature_12 <= 0.37"] * 2_000}


@pytest.fixture(params=["gzip", "zstd"])
def compression(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["local", "s3"])
def compressed_registry(
    request: pytest.FixtureRequest, tmp_path: Path, compression: str
) -> Any:
    options: dict[str, Any] = {"compression": compression}
    if request.param == "s3":
        options |= {"artifact_uri": request.getfixturevalue("s3_uri"),
                    "storage_options": request.getfixturevalue("s3_options")}
    with ModelRegistry(tmp_path / "registry", f"sqlite:///{tmp_path / 'r.db'}", **options) as reg:
        yield reg


def _stored(reg: ModelRegistry, model_id: str) -> bytes:
    if hasattr(reg.artifacts, "fs"):
        return bytes(reg.artifacts.fs.cat_file(reg.get_model_info(model_id).model_path))
    return Path(reg.get_model_info(model_id).model_path).read_bytes()


def test_compressed_model_round_trips_and_reports_both_sizes(compressed_registry: ModelRegistry, compression: str) -> None:
    model_id = compressed_registry.register_model(MODEL, metadata())
    info = compressed_registry.get_model_info(model_id)
    stored = _stored(compressed_registry, model_id)
    plain = pickle.dumps(MODEL, protocol=pickle.HIGHEST_PROTOCOL)
    assert compressed_registry.get_model(model_id) == MODEL
    assert info.compression == compression
    assert info.original_size == len(plain) and info.size_bytes == len(stored)
    assert info.size_bytes * 10 < info.original_size
    assert info.checksum == hashlib.sha256(stored).hexdigest()
    unpacked = gzip.decompress(stored) if compression == "gzip" else zstandard.ZstdDecompressor().decompressobj().decompress(stored)
    assert unpacked == plain


def test_tampered_compressed_artifact_is_detected_before_decompression(compressed_registry: ModelRegistry) -> None:
    model_id = compressed_registry.register_model(MODEL, metadata())
    stored = bytearray(_stored(compressed_registry, model_id))
    stored[len(stored) // 2] ^= 0x01
    path = compressed_registry.get_model_info(model_id).model_path
    if hasattr(compressed_registry.artifacts, "fs"):
        compressed_registry.artifacts.fs.pipe_file(path, bytes(stored))
    else:
        Path(path).write_bytes(bytes(stored))
    with pytest.raises(CorruptedArtifactError, match="checksum"):
        compressed_registry.get_model(model_id)
    with pytest.raises(CorruptedArtifactError):
        compressed_registry.verify_artifact(model_id)


def test_one_database_serves_plain_and_compressed_artifacts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with ModelRegistry(tmp_path / "reg", url) as plain_reg:
        plain = plain_reg.register_model(MODEL, metadata())
    with ModelRegistry(tmp_path / "reg", url, compression="gzip") as gzip_reg:
        packed = gzip_reg.register_model(MODEL, metadata())
        assert gzip_reg.get_model(plain) == gzip_reg.get_model(packed) == MODEL
        plain_info, packed_info = gzip_reg.get_model_info(plain), gzip_reg.get_model_info(packed)
    assert plain_info.compression is None and plain_info.original_size == plain_info.size_bytes
    assert packed_info.original_size == plain_info.original_size > packed_info.size_bytes


def test_model_path_files_are_compressed_too(tmp_path: Path) -> None:
    source = tmp_path / "trained.pkl"
    source.write_bytes(pickle.dumps(MODEL))
    with ModelRegistry(tmp_path / "reg", compression="zstd") as reg:
        model_id = reg.register_model(None, metadata(), model_path=source)
        info = reg.get_model_info(model_id)
        assert reg.get_model(model_id) == MODEL
    assert info.original_size == source.stat().st_size > info.size_bytes


def test_unknown_compression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match="lz4"):
        ModelRegistry(tmp_path / "reg", compression="lz4")


@pytest.mark.parametrize("codec", [None, "gzip", "zstd"])
def test_models_holding_large_numpy_arrays_are_stored(tmp_path: Path, codec: str | None) -> None:
    # Pickle protocol 5 writes big buffers as PickleBuffer objects, which have no len().
    import numpy as np

    model = {"weights": np.arange(1_000_000, dtype=np.float64)}
    with ModelRegistry(tmp_path / "reg", compression=codec) as reg:
        info = reg.get_model_info(reg.register_model(model, metadata()))
        assert np.array_equal(reg.get_model(info.model_id)["weights"], model["weights"])
    assert info.original_size is not None and info.original_size > 8_000_000
