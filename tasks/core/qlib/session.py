"""Process-wide Qlib state: one ``qlib.init`` per (data directory, tracking URI), one lock for Qlib work.

Qlib keeps its data provider and experiment manager in module globals, and its recorder is not
thread-safe (two threads inside ``R.start`` mix their runs). Every task that touches Qlib therefore
runs under :data:`QLIB_LOCK`, and :func:`init_qlib` only re-initialises when the data directory or
the tracking URI changes. It is also the one place that switches Qlib's dataset cache on
(``QMP_FEATURE_CACHE=qlib``) and keeps it, and Qlib's in-memory caches, at the data's current version.
"""

from __future__ import annotations

import builtins
import copy
import functools
import gc
import io
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qlib
from qlib.config import C
from qlib.log import set_log_with_config

from registry.settings import Settings
from tasks.core.data.version import DataVersionError, data_version
from tasks.core.features import cache as feature_cache
from tasks.core.third_party import CONSOLE_LEVEL_VARIABLE, LOG_FILE_VARIABLE

DEFAULT_EXPERIMENT = "qmp"
# Re-entrant so that a training that also evaluates can nest the lock.
QLIB_LOCK = threading.RLock()
_log = logging.getLogger(__name__)
_current_key: tuple[Any, ...] | None = None
_loaded_version: str | None = None
_warned_redis: set[str] = set()
_redis_down_until: dict[str, float] = {}
REDIS_RETRY_SECONDS = 60.0  # an unreachable Redis is asked again after this, not at every step

# Qlib's logging (the `qlib` logger's console handler) is set up once, here, when the flow modules are imported,
# and `init_qlib` asks qlib.init not to set it up again. qlib.init's `dictConfig`, run inside a Prefect run,
# shuts Prefect's API log handler down while holding logging's lock and can stall the run until Prefect's flush
# guard gives up (the stall tasks/core/qlib/workflow_config.py describes, there from importing qlib.cli.run).
# Its console level and log file come from the process environment (QMP_QLIB_CONSOLE_LEVEL, QMP_LOG_FILE), which
# the CLI sets at its edge: logging is process-wide and set up at import, before any settings are passed in, and
# worker processes (process pool, Dask) inherit the environment.


def qlib_logging_config(console_level: str, log_file: str | None) -> dict[str, Any]:
    """Qlib's logging configuration with its console handler at ``console_level`` and, when ``log_file`` is
    given, everything Qlib logs also appended to that file."""
    config: dict[str, Any] = copy.deepcopy(dict(C.logging_config))
    config["handlers"]["console"]["level"] = console_level.upper()
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        config["handlers"]["file"] = {"class": "logging.FileHandler", "filename": log_file, "level": "DEBUG", "delay": True,
                                      "formatter": "logger_format", "filters": ["field_not_found"]}
        config["loggers"]["qlib"]["handlers"] = ["console", "file"]
    return config


QLIB_LOGGING: dict[str, Any] = qlib_logging_config(
    os.environ.get(CONSOLE_LEVEL_VARIABLE, "DEBUG"), os.environ.get(LOG_FILE_VARIABLE))
C["logging_config"] = QLIB_LOGGING  # importing qlib.cli.run applies Qlib's configuration again: this one
set_log_with_config(QLIB_LOGGING)

# What Qlib's recorder keeps of the working directory's code with every run, by file name.
GIT_SNAPSHOTS = ((("git", "diff"), "code_diff.txt"), (("git", "status"), "code_status.txt"),
                 (("git", "diff", "--cached"), "code_cached.txt"))


def log_uncommitted_code_quietly(recorder: Any) -> None:
    """Qlib's ``MLflowRecorder._log_uncommitted_code``, without git's complaints on the terminal.

    Qlib runs `git diff`, `git status` and `git diff --cached` in the working directory when a recorder starts
    and keeps their output with the run; outside a repository (where `qmp` is usually run from) git prints its
    whole usage text, about 20 kB a run, on the terminal. The same three files are kept here when git answers,
    and git's error output goes nowhere.
    """
    from mlflow.exceptions import MlflowException

    for command, name in GIT_SNAPSHOTS:
        try:
            out = subprocess.run(command, capture_output=True, check=True, timeout=60).stdout
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            _log.debug("not a git work tree (or no git): %s not kept with the run", name)
            continue
        try:
            recorder.client.log_text(recorder.id, out.decode(errors="replace"), name)
        except MlflowException as exc:
            _log.debug("could not keep %s with the run: %s", name, exc)


@functools.cache
def _quiet_recorders() -> None:
    """Qlib's recorders keep the code's state through :func:`log_uncommitted_code_quietly` (once, at the first
    initialisation: importing Qlib's recorder imports MLflow, which a command that never trains does not need)."""
    from qlib.workflow.recorder import MLflowRecorder

    MLflowRecorder._log_uncommitted_code = log_uncommitted_code_quietly  # type: ignore[method-assign]


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the objects alive now out of the cyclic garbage collector's passes while a Qlib step runs.

    A flow process holds hundreds of thousands of tracked objects once Prefect, Qlib and MLflow are imported,
    and a dataset build allocates millions of short-lived ones: each collection it triggers would go over the
    old ones again (the time it costs: benchmarks/README.md). They go back to the collector when the step
    ends, so nothing frozen here is kept for good. Callers hold QLIB_LOCK (one step at a time); a nested step,
    or a process that froze objects itself (a pre-fork server), is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def mlflow_artifact_root(settings: Settings) -> Path:
    """Where recorder artifacts go: inside the registry directory, never ``<cwd>/mlruns``."""
    return (settings.registry_dir / "mlruns").resolve()


def init_qlib(
    provider_uri: str | Path,
    *,
    region: str = "cn",
    settings: Settings,
    default_exp_name: str = DEFAULT_EXPERIMENT,
    **qlib_kwargs: Any,
) -> None:
    """Initialise Qlib with an MLflow experiment manager on a database URI, unless already done alike.

    With ``QMP_FEATURE_CACHE=qlib`` Qlib's dataset cache is switched on with the Redis of ``QMP_REDIS_URL``
    for its locks (or, when that Redis does not answer, one warning and no cache), and its files are brought
    to the data directory's current version on every call.
    """
    global _current_key, _loaded_version
    provider = str(Path(provider_uri).expanduser().resolve())
    tracking_uri = settings.resolved_mlflow_uri()
    cache_options = _cache_options(provider, settings) if "dataset_cache" not in qlib_kwargs else {}
    options = {**cache_options, **qlib_kwargs}
    key = (provider, region, tracking_uri, default_exp_name, repr(sorted(options.items())))
    with QLIB_LOCK:
        if key != _current_key:
            settings.registry_dir.mkdir(parents=True, exist_ok=True)
            exp_manager = {
                "class": "MLflowExpManager",
                "module_path": "qlib.workflow.expm",
                "kwargs": {"uri": tracking_uri, "default_exp_name": default_exp_name},
            }
            _log.info("initialising Qlib on %s (tracking %s)", provider, tracking_uri)
            _quiet_recorders()
            qlib.init(provider_uri=provider, region=region, exp_manager=exp_manager,
                      **{"logging_config": None, **options})
            _import_qlib_models_quietly()
            if "logging_config" not in options:
                # Kept in Qlib's config for its worker processes, which set their logging up from it.
                C["logging_config"] = QLIB_LOGGING
            _current_key = key
            _loaded_version = None
        _follow_data_version(provider, settings)


@functools.cache
def _import_qlib_models_quietly() -> None:
    """Import Qlib's model package once with its stdout captured: it prints a line for every optional model
    whose library is missing (CatBoost, XGBoost, PyTorch), on stdout, which carries a command's answer.

    It goes through ``print`` itself, not only ``sys.stdout``: inside a flow run with ``log_prints``, Prefect's
    ``print`` would log each line to the run logger (the console of `qmp serve`) whatever stdout is."""
    captured = io.StringIO()
    to_stdout = builtins.print
    builtins.print = functools.partial(to_stdout, file=captured)
    try:
        import qlib.contrib.model  # noqa: F401
    finally:
        builtins.print = to_stdout
    for line in captured.getvalue().splitlines():
        _log.debug("qlib: %s", line)


def _cache_options(provider: str, settings: Settings) -> dict[str, Any]:
    """qlib.init's dataset-cache arguments when the cache is asked for and its Redis answers, else none."""
    if settings.feature_cache != "qlib":
        return {}
    url = settings.redis_url
    down = time.monotonic() < _redis_down_until.get(url, 0.0)
    if down or not feature_cache.redis_reachable(url):
        if not down:
            _redis_down_until[url] = time.monotonic() + REDIS_RETRY_SECONDS
        if settings.redis_url not in _warned_redis:  # once per process, not once per step
            _warned_redis.add(settings.redis_url)
            _log.warning("feature cache off: Redis at %s does not answer (QMP_REDIS_URL); features are "
                         "computed without the cache", settings.redis_url)
        return {}
    return feature_cache.qlib_init_options(provider, settings)


def _follow_data_version(provider: str, settings: Settings) -> None:
    """Forget data Qlib holds in memory, and sync its dataset cache, once the data directory changed."""
    global _loaded_version
    try:
        current = str(data_version(provider))
    except DataVersionError:
        return  # not a data directory (yet): Qlib reports what is missing when it reads
    if current == _loaded_version:
        return
    forget_stale_data(provider, current)
    if C.get("dataset_cache") is not None:
        cache_dir = Path(provider) / C["dataset_cache_dir_name"]
        feature_cache.sync_qlib_cache(provider, cache_dir, settings.redis_url)
    _loaded_version = current


def current_data() -> tuple[str, str] | None:
    """(data directory, data version) Qlib reads now, as of its last initialisation; None before one, or when the
    directory has no data version (then nothing may be remembered about what Qlib read from it)."""
    if _current_key is None or _loaded_version is None:
        return None
    return str(_current_key[0]), _loaded_version


def qlib_cache_enabled() -> bool:
    """True when the current Qlib session reads features through its dataset cache."""
    return C.get("dataset_cache") is not None


def init_from_qlib_init(qlib_init: dict[str, Any], settings: Settings) -> None:
    """Initialise Qlib from a workflow's ``qlib_init`` section (its own ``exp_manager`` is replaced)."""
    options = {k: v for k, v in qlib_init.items() if k not in {"provider_uri", "region", "exp_manager"}}
    if "exp_manager" in qlib_init:
        _log.warning("ignoring qlib_init.exp_manager: recorders go to the registry's tracking database")
    init_qlib(qlib_init["provider_uri"], region=qlib_init.get("region", "cn"), settings=settings, **options)


def ensure_experiment(name: str, settings: Settings) -> str:
    """Create the MLflow experiment ``name`` with its artifacts under the registry dir; return its id."""
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=settings.resolved_mlflow_uri())
    with QLIB_LOCK:
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        if settings.mlflow_artifact_uri:
            # Object storage shared by every machine (MLflow reads S3 credentials from the environment).
            location = f"{settings.mlflow_artifact_uri.rstrip('/')}/{name}"
        else:
            location = (mlflow_artifact_root(settings) / name).as_uri()
        return str(client.create_experiment(name, artifact_location=location))



_seen_data_versions: dict[str, str] = {}


def forget_stale_data(provider_uri: str | Path, version: object) -> None:
    """Drop Qlib's in-process calendar, instrument and feature caches when the data directory's version
    changed since this process last read it: appended days or a corrected value must be seen by a
    long-lived process (``qmp serve`` runs every scheduled flow in one process)."""
    from qlib.data.cache import H

    provider, current = str(Path(provider_uri).expanduser().resolve()), str(version)
    with QLIB_LOCK:
        previous = _seen_data_versions.get(provider)
        if previous is not None and previous != current:
            _log.info("data in %s changed (%s -> %s): clearing Qlib's in-memory caches", provider, previous, current)
            H.clear()
        _seen_data_versions[provider] = current
