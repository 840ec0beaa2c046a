"""The feature layer: raw handler features built once and shared across windows, processes and runs.

Two backends, one API:

- the local store (:class:`FeatureStore`, no Redis): files keyed by the handler's configuration (without
  its time range and processors), its instruments and the data version. Worker processes of a rolling
  replay read the file the first of them built; a new data version gives a new key (older files of the
  same handler are deleted when it is written).
- Qlib's dataset cache (``QMP_FEATURE_CACHE=qlib``, see :mod:`tasks.core.features.cache`): switched on by
  :func:`tasks.core.qlib.session.init_qlib`; every Qlib feature read goes through it, so building the local
  store's file is itself fast once Qlib's cache is warm.

Typical use (one replay, windows in worker processes)::

    raw = load_raw_features(handler_config, span=("2008-01-01", "2020-09-30"), provider_uri=data_dir,
                            settings=settings)
    handler = handler_from_features(window_handler_config, raw)   # processors fitted per window
    dataset = DatasetH(handler, segments=...)
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from registry.settings import Settings
from tasks.core.data.version import data_version
from tasks.core.files import write_atomically

#: Handler arguments that do not change the raw features (time range, processors, what is kept).
NOT_RAW = frozenset({
    "start_time", "end_time", "fit_start_time", "fit_end_time", "infer_processors", "learn_processors",
    "process_type", "drop_raw",
})
LOCAL_STORE_DIR_NAME = "qmp_features"
Span = tuple[str | None, str | None]


def raw_features_key(handler_config: Mapping[str, Any], provider_uri: str | Path) -> str:
    """``<handler digest>-<data digest>``: the file name of these raw features at the current data version."""
    kwargs = {k: v for k, v in (handler_config.get("kwargs") or {}).items() if k not in NOT_RAW}
    spec = {"class": handler_config.get("class"), "module_path": handler_config.get("module_path"), "kwargs": kwargs}
    text = json.dumps(spec, sort_keys=True, default=str)
    handler_digest = hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
    version = f"{Path(provider_uri).expanduser().resolve()}|{data_version(provider_uri)}"
    return f"{handler_digest}-{hashlib.blake2b(version.encode(), digest_size=8).hexdigest()}"


def local_store_dir(provider_uri: str | Path, settings: Settings) -> Path:
    """Where the local store of ``provider_uri`` lives: ``<data>/qmp_features`` unless configured."""
    from tasks.core.features.cache import qlib_cache_dir

    if settings.feature_cache_dir is None:
        return Path(provider_uri).expanduser().resolve() / LOCAL_STORE_DIR_NAME
    return qlib_cache_dir(provider_uri, settings).parents[1] / LOCAL_STORE_DIR_NAME / qlib_cache_dir(
        provider_uri, settings).name


def _covers(stored: Span, wanted: Span) -> bool:
    (s0, e0), (s1, e1) = stored, wanted
    starts = s0 is None or (s1 is not None and pd.Timestamp(s0) <= pd.Timestamp(s1))
    ends = e0 is None or (e1 is not None and pd.Timestamp(e0) >= pd.Timestamp(e1))
    return starts and ends


def _union(a: Span, b: Span) -> Span:
    start = None if a[0] is None or b[0] is None else min(a[0], b[0], key=pd.Timestamp)
    end = None if a[1] is None or b[1] is None else max(a[1], b[1], key=pd.Timestamp)
    return start, end


def _slice(raw: pd.DataFrame, span: Span) -> pd.DataFrame:
    start, end = (None if t is None else pd.Timestamp(t) for t in span)
    return raw.loc[start:end]  # type: ignore[misc]


@dataclass(frozen=True)
class FeatureStore:
    """Raw handler features as pickled DataFrames under ``root`` (one file per key, written atomically)."""

    root: Path

    def paths(self, key: str) -> tuple[Path, Path]:
        """The frame's file and its metadata (span, handler) for ``key``."""
        return self.root / f"{key}.pkl", self.root / f"{key}.json"

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """One builder per key across processes; readers of a finished file never wait long."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{key}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stored_span(self, key: str) -> Span | None:
        """The span the file for ``key`` covers, or None when there is none."""
        frame, meta = self.paths(key)
        if not frame.is_file() or not meta.is_file():
            return None
        start, end = json.loads(meta.read_text())["span"]
        return start, end

    def load(self, handler_config: Mapping[str, Any], span: Span, provider_uri: str | Path) -> pd.DataFrame:
        """The raw features of ``handler_config`` over ``span``: read from the store, built there if missing."""
        key = raw_features_key(handler_config, provider_uri)
        stored = self.stored_span(key)
        if stored is None or not _covers(stored, span):
            with self._locked(key):
                stored = self.stored_span(key)
                if stored is None or not _covers(stored, span):
                    wanted = span if stored is None else _union(stored, span)
                    raw = compute_raw_features(handler_config, wanted)
                    self._write(key, raw, wanted, handler_config)
                    return _slice(raw, span)
        return _slice(pd.read_pickle(self.paths(key)[0]), span)

    def _write(self, key: str, raw: pd.DataFrame, span: Span, handler_config: Mapping[str, Any]) -> None:
        frame, meta = self.paths(key)
        for path, write in ((frame, lambda p: raw.to_pickle(p)),
                            (meta, lambda p: p.write_text(json.dumps(
                                {"span": list(span), "handler": handler_config}, default=str)))):
            write_atomically(path, write)
        handler_digest = key.split("-")[0]
        for old in self.root.glob(f"{handler_digest}-*"):
            if not old.name.startswith(key):
                old.unlink(missing_ok=True)


def _handler_without_data(handler_config: Mapping[str, Any]) -> Any:
    """The handler of ``handler_config`` constructed with no data loaded yet (Qlib initialised)."""
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.utils import init_instance_by_config

    config = copy.deepcopy(dict(handler_config))
    config["kwargs"] = {**(config.get("kwargs") or {}), "init_data": False}
    return init_instance_by_config(config, accept_types=DataHandlerLP)


def compute_raw_features(handler_config: Mapping[str, Any], span: Span) -> pd.DataFrame:
    """What the handler's data loader reads over ``span`` (no processors), through Qlib as initialised."""
    from tasks.core.qlib.session import QLIB_LOCK

    with QLIB_LOCK:
        handler = _handler_without_data(handler_config)
        return handler.data_loader.load(handler.instruments, span[0], span[1])


def handler_from_features(handler_config: Mapping[str, Any], raw: pd.DataFrame) -> Any:
    """The handler of ``handler_config`` with its raw data taken from ``raw`` and its processors run on it."""
    from qlib.data.dataset.loader import StaticDataLoader

    from tasks.core.qlib.session import QLIB_LOCK

    with QLIB_LOCK:
        handler = _handler_without_data(handler_config)
        handler.data_loader = StaticDataLoader(raw)
        handler.instruments = None  # ``raw`` holds exactly the handler's instruments
        handler.setup_data()
        return handler


def load_raw_features(
    handler_config: Mapping[str, Any],
    span: Span | None = None,
    *,
    provider_uri: str | Path,
    settings: Settings,
    instruments: Any = None,
    store: FeatureStore | None = None,
) -> pd.DataFrame:
    """Raw features of ``handler_config`` (``instruments`` overriding its own) over ``span`` (default: the
    handler's start..end), built once per data version in the local store and read through Qlib's dataset
    cache when ``QMP_FEATURE_CACHE=qlib``. Safe to call from several processes at once."""
    from tasks.core.qlib.session import init_qlib

    config = copy.deepcopy(dict(handler_config))
    kwargs = dict(config.get("kwargs") or {})
    if instruments is not None:
        kwargs["instruments"] = instruments
    config["kwargs"] = kwargs
    init_qlib(provider_uri, settings=settings)
    wanted: Span = span or (_text(kwargs.get("start_time")), _text(kwargs.get("end_time")))
    store = store or FeatureStore(local_store_dir(provider_uri, settings))
    return store.load(config, wanted, provider_uri)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@contextmanager
def skip_cold_qlib_cache(handler_config: Mapping[str, Any]) -> Iterator[bool]:
    """Read ``handler_config``'s features without Qlib's dataset cache when its cache file does not exist yet.

    A cold cache file is built over the whole calendar for every instrument, which a one-day prediction
    should not pay for. Yields whether the cache is used. Qlib must be initialised (callers hold QLIB_LOCK).
    """
    from qlib.config import C

    from tasks.core.qlib.session import QLIB_LOCK

    with QLIB_LOCK:
        warm = C.get("dataset_cache") is not None and qlib_cache_is_warm(handler_config)
        previous = C["default_disk_cache"]
        C["default_disk_cache"] = 1 if warm else 0
        try:
            yield warm
        finally:
            C["default_disk_cache"] = previous


def qlib_cache_is_warm(handler_config: Mapping[str, Any], freq: str = "day") -> bool:
    """True when Qlib's dataset cache holds a file for every field group the handler's loader reads."""
    from qlib.config import C
    from qlib.data import D
    from qlib.data.cache import DiskDatasetCache

    handler = _handler_without_data(handler_config)
    loader = handler.data_loader
    instruments = handler.instruments
    if isinstance(instruments, str):
        instruments = D.instruments(instruments, filter_pipe=getattr(loader, "filter_pipe", None))
    groups = loader.fields.values() if getattr(loader, "is_group", False) else [loader.fields]
    cache_dir = Path(C.dpm.get_data_uri(freq)) / C["dataset_cache_dir_name"]
    for exprs, _names in groups:
        uri = DiskDatasetCache._uri(instruments, exprs, None, None, freq, disk_cache=1, inst_processors=[])
        if not DiskDatasetCache.check_cache_exists(cache_dir / uri):
            return False
    return True
