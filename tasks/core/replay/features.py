"""A replay's raw features, from the shared feature layer (:mod:`tasks.core.features.raw`), held once per process.

The flow builds the raw features (no processors) once into the local store, keyed by the handler
configuration, its instruments and the data version; every worker process reads that file once and
keeps the frame for all the windows it runs. Each window's handler is made from the frame with
``handler_from_features``: in ``refit`` mode with the window's training span as the processors' fit span,
in ``fixed`` mode with the YAML's (processed once per process, as Qlib's ``Rolling`` does once per run).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.core.replay.plan import ReplayPlan, Window
from tasks.core.timing import timed

_raw: dict[str, Any] = {}
_fixed: dict[str, Any] = {}


@dataclass(frozen=True)
class FeatureHandle:
    """Where the replay's raw features are stored, whether this call built them, and how long it took."""

    path: Path
    key: str
    built: bool
    seconds: float


def _span(plan: ReplayPlan) -> tuple[str | None, str | None]:
    kwargs = plan.handler_config.get("kwargs") or {}
    return (None if kwargs.get("start_time") is None else str(kwargs["start_time"]),
            None if kwargs.get("end_time") is None else str(kwargs["end_time"]))


def ensure_features(plan: ReplayPlan) -> FeatureHandle:
    """Build the replay's raw features into the local store unless they are there (Qlib initialised)."""
    from tasks.core.features.raw import FeatureStore, load_raw_features, local_store_dir, raw_features_key

    provider = plan.qlib_init["provider_uri"]
    store = FeatureStore(local_store_dir(provider, plan.settings))
    key = raw_features_key(plan.handler_config, provider)
    stored = store.stored_span(key)
    with timed() as clock:
        raw = load_raw_features(plan.handler_config, _span(plan), provider_uri=provider, settings=plan.settings,
                                store=store)
        built = stored != store.stored_span(key)
        _raw.clear()
        _raw[key] = raw  # a worker in this very process (one worker) reads it from here
    return FeatureHandle(store.paths(key)[0], key, built, clock.seconds if built else 0.0)


def raw_features(plan: ReplayPlan) -> Any:
    """The replay's raw features in this process, read from the store the first time."""
    from tasks.core.features.raw import load_raw_features, raw_features_key

    provider = plan.qlib_init["provider_uri"]
    key = raw_features_key(plan.handler_config, provider)
    if key not in _raw:
        _raw.clear()
        _raw[key] = load_raw_features(plan.handler_config, _span(plan), provider_uri=provider, settings=plan.settings)
    return _raw[key]


def window_handler(plan: ReplayPlan, window: Window) -> tuple[Any, float, float]:
    """The window's handler; (handler, seconds reading features, seconds running processors)."""
    from tasks.core.features.raw import handler_from_features

    with timed() as reading:
        raw = raw_features(plan)
    with timed() as processing:
        if plan.spec.processors == "fixed":
            if plan.replay_id not in _fixed:
                _fixed.clear()
                _fixed[plan.replay_id] = handler_from_features(plan.handler_config, raw)
            handler = _fixed[plan.replay_id]
        else:
            config = copy.deepcopy(plan.handler_config)
            config["kwargs"] = {**config["kwargs"], "fit_start_time": window.fit_start_time,
                                "fit_end_time": window.fit_end_time}
            handler = handler_from_features(config, raw)
    return handler, reading.seconds, processing.seconds
