"""The feature layer's local backend: a handler's raw features built once, read by every worker process.

A built handler (Qlib's ``DataHandlerLP`` with its raw, learn and infer frames, pickled the way
``replace_task_handler_with_cache`` does with ``dump_all=True``) is stored under a key made of the
handler configuration (class, kwargs: instruments, times, label, processors) and the data version, so a
corrected or appended data directory never serves stale features. Files are written to a temporary
name and renamed, under a lock file, so concurrent builders produce one file and readers never see a
half-written one. It needs no Redis; worker processes on other machines read it from a shared mount.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.settings import Settings

_loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()
_MAX_LOADED = 2


@dataclass(frozen=True)
class FeatureHandle:
    """Where a built handler is, and whether this call built it (and how long that took)."""

    path: Path
    key: str
    built: bool
    seconds: float


def feature_dir(settings: Settings) -> Path:
    """The local feature store's root: ``{registry_dir}/features``."""
    return (settings.registry_dir / "features").expanduser().resolve()


def feature_key(handler_config: dict[str, Any], data_version: str) -> str:
    """The store key of a handler configuration on one data version."""
    blob = json.dumps({"handler": handler_config, "data_version": data_version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def ensure_handler(handler_config: dict[str, Any], data_version: str, root: Path) -> FeatureHandle:
    """The stored handler for ``handler_config``, built (Qlib initialised by the caller) when missing."""
    import copy

    from qlib.utils import init_instance_by_config

    key = feature_key(handler_config, data_version)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{str(handler_config.get('class', 'handler')).rsplit('.', 1)[-1]}.{key}.pkl"
    if path.is_file():
        return FeatureHandle(path, key, False, 0.0)
    with (root / f".{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():  # built by another process while we waited
            return FeatureHandle(path, key, False, 0.0)
        started = time.perf_counter()
        # A copy: Qlib's handlers write the fit times into their processors' kwargs.
        handler = init_instance_by_config(copy.deepcopy(handler_config))
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        handler.to_pickle(partial, dump_all=True)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
        return FeatureHandle(path, key, True, time.perf_counter() - started)


def load_handler(path: Path, purpose: str = "read") -> Any:
    """The handler stored at ``path``, unpickled once per process and ``purpose``.

    Callers that change a handler in place (re-fitting its processors) pass their own ``purpose`` so
    they never share an object with callers that need it as built.
    """
    import pickle

    cache_key = (str(path), purpose)
    if cache_key in _loaded:
        _loaded.move_to_end(cache_key)
        return _loaded[cache_key]
    with Path(path).open("rb") as handle:
        handler = pickle.load(handle)
    _loaded[cache_key] = handler
    while len(_loaded) > _MAX_LOADED:
        _loaded.popitem(last=False)
    return handler
