"""Qlib's dataset cache (``DiskDatasetCache``, Redis-locked) tied to the data version, so it is never stale.

Qlib keys a cache file on instruments + fields + frequency and never notices by itself that the data
directory gained trading days or was rewritten. A manifest beside the cache files records the data version
they were built on, plus each data file's size and content digest. When the data version moves on:

- an *append* (the old calendar is a prefix of the new one, every old data file is a byte prefix of its new
  content, instrument spans only grow at the old calendar end, new instruments start after it) extends each
  cache file with Qlib's own ``DiskDatasetCache.update``, which recomputes the label horizon's last days and
  appends the new ones: exact for expressions with a finite look-back (Alpha158, Alpha360);
- anything else (a rewritten past value, a re-import, an expanding or exponential window whose value depends
  on where the history starts) deletes the cache file, and Qlib rebuilds it on the next read.

The check runs under a Redis lock, so processes sharing a data directory sync once and read safely.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from qlib.data.cache import DiskDatasetCache

from registry.settings import Settings
from tasks.core.data.version import CALENDAR, data_version
from tasks.core.files import write_atomically

MANIFEST = "qmp_data_version.json"
QLIB_CACHE_DIR_NAME = "dataset_cache"
_LOCK_SECONDS = 60
_log = logging.getLogger(__name__)

SyncOutcome = Literal["current", "new", "extended", "rebuilt"]


def redis_options(url: str) -> dict[str, Any]:
    """``qlib.init`` keyword arguments for the Redis at ``url`` (``redis://[:password@]host:port/db``)."""
    from redis.connection import parse_url

    parts = parse_url(url)
    return {
        "redis_host": parts.get("host", "127.0.0.1"),
        "redis_port": int(parts.get("port", 6379)),
        "redis_task_db": int(parts.get("db", 0)),
        "redis_password": parts.get("password"),
    }


def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    """True when the Redis server at ``url`` answers a PING within ``timeout`` seconds."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return bool(client.ping())
    except (redis.exceptions.RedisError, OSError, ValueError):
        return False


def qlib_cache_dir(provider_uri: str | Path, settings: Settings) -> Path:
    """Where Qlib's dataset cache of ``provider_uri`` lives: ``<data>/dataset_cache`` unless configured."""
    provider = Path(provider_uri).expanduser().resolve()
    if settings.feature_cache_dir is None:
        return provider / QLIB_CACHE_DIR_NAME
    # One data directory per sub-directory: Qlib's key does not name the data directory.
    tag = hashlib.blake2b(str(provider).encode(), digest_size=6).hexdigest()
    return Path(settings.feature_cache_dir).expanduser().resolve() / QLIB_CACHE_DIR_NAME / f"{provider.name}-{tag}"


def qlib_init_options(provider_uri: str | Path, settings: Settings) -> dict[str, Any]:
    """The ``qlib.init`` arguments that switch Qlib's dataset cache on (Qlib joins an absolute dir name as is)."""
    return {
        "dataset_cache": {"class": "LockedDiskDatasetCache", "module_path": "tasks.core.features.cache"},
        "dataset_cache_dir_name": str(qlib_cache_dir(provider_uri, settings)),
        **redis_options(settings.redis_url),
    }


@dataclass
class CacheUsage:
    """What ``qmp cleanup --feature-cache`` reports for one cache directory."""

    path: Path
    entries: int = 0
    bytes: int = 0
    removed: bool = False


def cache_usage(path: Path) -> CacheUsage:
    """Entries (Qlib cache files) and bytes under ``path``."""
    usage = CacheUsage(path)
    if not path.is_dir():
        return usage
    for item in path.rglob("*"):
        if item.is_file():
            usage.bytes += item.stat().st_size
            usage.entries += item.suffix in {".meta", ".pkl"}  # one per Qlib cache file or stored frame
    return usage


def delete_cache(path: Path) -> CacheUsage:
    """Delete the cache directory ``path`` and report what it held."""
    usage = cache_usage(path)
    if path.is_dir():
        shutil.rmtree(path)
        usage.removed = True
    return usage


# --- one builder per cache file ---------------------------------------------------------------------------


def _qlib_lock_name(uri: str, freq: str = "day") -> str:
    """The name Qlib's read/write locks of one cache file are derived from."""
    from qlib.config import C

    return f"{C.dpm.get_data_uri(freq)}:dataset-{uri}"


@contextmanager
def builder_lock(conn: Any, uri: str, freq: str = "day") -> Iterator[None]:
    """Hold the right to write cache file ``uri``: one process at a time, the others wait.

    Qlib's writer lock has one fixed owner id (``QLIB``) in every process, and python-redis-lock refuses a lock
    whose owner id is its own: a second process building the same cache file at once fails with
    QlibCacheException instead of waiting. This lock has a unique id per holder, expires when its holder dies,
    and while it is held a ``QLIB`` writer lock on the file can only be a crashed writer's, so it is reset.
    """
    import redis_lock
    from qlib.data.cache import CacheUtils

    name = _qlib_lock_name(uri, freq)
    with redis_lock.Lock(conn, f"qmp-build:{name}", expire=_LOCK_SECONDS, auto_renewal=True):
        qlib_writer = redis_lock.Lock(conn, f"{name}-wlock")
        if qlib_writer.get_owner_id() == CacheUtils.LOCK_ID:
            qlib_writer.reset()
        yield


class LockedDiskDatasetCache(DiskDatasetCache):  # type: ignore[misc]
    """Qlib's DiskDatasetCache, its cache files built under :func:`builder_lock`."""

    def _dataset(self, instruments: Any, fields: Any, start_time: Any = None, end_time: Any = None,
                 freq: str = "day", disk_cache: int = 0, inst_processors: Any = ()) -> Any:
        inst_processors = list(inst_processors or [])
        args = (instruments, fields, start_time, end_time, freq, disk_cache)
        if disk_cache == 0 or inst_processors:
            return super()._dataset(*args, inst_processors=inst_processors)
        uri = self._uri(instruments, fields, None, None, freq, disk_cache=disk_cache)
        if disk_cache == 1 and self.check_cache_exists(self.get_cache_dir(freq) / uri):
            return super()._dataset(*args, inst_processors=inst_processors)
        with builder_lock(self.r, uri, freq):
            # Qlib looks again: a file another process built meanwhile is read, not rebuilt.
            return super()._dataset(*args, inst_processors=inst_processors)


# --- the data manifest ---------------------------------------------------------------------------------


@dataclass
class DataManifest:
    """The data directory as the cache files saw it: version, calendar, instrument spans, file digests."""

    version: str
    calendar_bytes: int
    calendar_digest: str
    instruments: dict[str, list[list[str]]]
    files: dict[str, list[Any]] = field(default_factory=dict)  # relative path -> [size, digest]

    def to_json(self) -> str:
        """Serialised form stored beside the cache files."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def read_text(cls, text: str) -> DataManifest:
        """The inverse of :meth:`to_json`."""
        return cls(**json.loads(text))

    @classmethod
    def read(cls, path: Path) -> DataManifest | None:
        """The manifest at ``path``, or None when missing or unreadable."""
        try:
            return cls.read_text(path.read_text())
        except (OSError, ValueError, TypeError):
            return None


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _feature_files(root: Path) -> Iterator[Path]:
    features = root / "features"
    if features.is_dir():
        for directory in sorted(p for p in features.iterdir() if p.is_dir()):
            yield from sorted(p for p in directory.iterdir() if p.is_file())


def _instrument_spans(root: Path) -> dict[str, list[list[str]]]:
    spans: dict[str, list[list[str]]] = {}
    for path in sorted((root / "instruments").glob("*.txt")):
        spans[path.stem] = [line.split("\t")[:3] for line in path.read_text().splitlines() if line.strip()]
    return spans


def build_manifest(root: Path, old: DataManifest | None = None) -> tuple[DataManifest, bool]:
    """The manifest of ``root`` now, and whether it only appended to ``old`` (False when ``old`` is None)."""
    calendar = (root / CALENDAR).read_bytes()
    manifest = DataManifest(
        version=str(data_version(root)),
        calendar_bytes=len(calendar),
        calendar_digest=_digest(calendar),
        instruments=_instrument_spans(root),
    )
    appended = old is not None and _digest(calendar[: old.calendar_bytes]) == old.calendar_digest
    appended = appended and old is not None and _spans_only_grew(old, manifest, calendar)
    seen: set[str] = set()
    for path in _feature_files(root):
        name = path.relative_to(root).as_posix()
        data = path.read_bytes()
        manifest.files[name] = [len(data), _digest(data)]
        seen.add(name)
        if appended and old is not None:
            before = old.files.get(name)
            if before is None:
                appended = _is_new_listing(name, old, manifest)
            else:
                appended = len(data) >= before[0] and _digest(data[: before[0]]) == before[1]
    if appended and old is not None and set(old.files) - seen:
        appended = False
    return manifest, appended


def _old_end(old: DataManifest, calendar: bytes) -> str:
    return calendar[: old.calendar_bytes].decode().split()[-1]


def _spans_only_grew(old: DataManifest, new: DataManifest, calendar: bytes) -> bool:
    """Every old membership line is kept, extended only where it reached the old calendar end; new lines
    start after it (so no old day gains or loses a row)."""
    old_end = _old_end(old, calendar)
    for universe, old_lines in old.instruments.items():
        new_lines = {(s, start): end for s, start, end in new.instruments.get(universe, [])}
        for symbol, start, end in old_lines:
            new_end = new_lines.pop((symbol, start), None)
            if new_end is None or (new_end != end and end != old_end):
                return False
        if any(start <= old_end for _, start in new_lines):
            return False
    return set(new.instruments) >= set(old.instruments)


def _is_new_listing(name: str, old: DataManifest, new: DataManifest) -> bool:
    """A data file that did not exist is harmless only for an instrument listed after the old calendar end."""
    symbol = name.split("/")[1].upper()
    old_symbols = {s.upper() for lines in old.instruments.values() for s, _, _ in lines}
    return symbol not in old_symbols and any(
        s.upper() == symbol for lines in new.instruments.values() for s, _, _ in lines
    )


# --- syncing Qlib's cache files with the data ------------------------------------------------------------


def _entries(cache_dir: Path) -> list[Path]:
    """Qlib's complete cache files (data + .meta + .index)."""
    entries = []
    for meta in sorted(cache_dir.glob("*.meta")):
        data = meta.with_suffix("")
        if data.is_file() and meta.with_suffix(".index").is_file():
            entries.append(data)
    return entries


def _extendable(meta_path: Path) -> bool:
    """Qlib's update is exact for a cache file of market instruments whose fields look back a finite window."""
    import pickle

    from qlib.data.base import Expression
    from qlib.data.data import ExpressionD, Inst
    from qlib.data.ops import EMA, PairRolling, Rolling

    with meta_path.open("rb") as handle:
        info = pickle.load(handle)["info"]
    if Inst.get_inst_type(info["instruments"]) != Inst.CONF or info.get("inst_processors"):
        return False

    def finite(node: Any) -> bool:
        if isinstance(node, EMA) or (isinstance(node, Rolling | PairRolling) and node.N == 0):
            return False
        if not type(node).__module__.startswith("qlib.data."):
            return False
        return all(finite(child) for child in vars(node).values() if isinstance(child, Expression))

    return all(finite(ExpressionD.get_expression_instance(f)) for f in info["fields"])


def sync_qlib_cache(provider_uri: str | Path, cache_dir: Path, redis_url: str) -> SyncOutcome:
    """Bring Qlib's cache files in ``cache_dir`` to the data directory's current version (Qlib initialised).

    Returns what was done: ``current`` (nothing to do), ``new`` (no cache files yet), ``extended`` (Qlib's
    update appended the new days) or ``rebuilt`` (cache files deleted, all or those Qlib's update cannot extend
    exactly; Qlib builds them again on use).
    """
    import redis
    import redis_lock

    root = Path(provider_uri).expanduser().resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = cache_dir / MANIFEST
    old = DataManifest.read(manifest_path)
    if old is not None and old.version == str(data_version(root)):
        return "current"
    conn = redis.Redis.from_url(redis_url)
    with redis_lock.Lock(conn, f"qmp:feature-cache:{cache_dir}", expire=_LOCK_SECONDS, auto_renewal=True):
        old = DataManifest.read(manifest_path)
        if old is not None and old.version == str(data_version(root)):
            return "current"
        new, appended = build_manifest(root, old)
        _forget_loaded_data()
        entries = _entries(cache_dir)
        cleared = 0
        for entry in entries:
            with builder_lock(conn, entry.name):
                if appended and _extendable(entry.with_suffix(".meta")) and _qlib_update(entry) == 0:
                    continue
                _clear_entry(entry, conn)
                cleared += 1
        outcome: SyncOutcome = "new" if not entries else "rebuilt" if cleared else "extended"
        write_atomically(manifest_path, lambda p: p.write_text(new.to_json()))
    _log.info("feature cache %s: %s for data version %s", cache_dir, outcome, new.version)
    return outcome


def _forget_loaded_data() -> None:
    """Drop Qlib's in-process memory caches (calendar, instruments, expressions) of the old data."""
    from qlib.data.cache import H

    H.clear()


def _qlib_update(entry: Path) -> int:
    """Qlib's own extension of one cache file (0 updated, 1 nothing to do, 2 corrupt and removed)."""
    from qlib.data.data import DatasetD

    status = int(DatasetD.update(entry.name, freq="day"))
    return 0 if status == 1 else status


def _clear_entry(entry: Path, conn: Any) -> None:
    """Delete one cache file under Qlib's writer lock for it, so no reader is half-way through it."""
    from qlib.data.cache import CacheUtils

    with CacheUtils.writer_lock(conn, _qlib_lock_name(entry.name)):
        DiskDatasetCache.clear_cache(entry)
