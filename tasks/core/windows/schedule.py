"""Scheduled retraining on the data calendar: the window settings, the resolved run, the gate and the alarm.

:func:`resolve_run` turns a workflow plus :class:`WindowSettings` into what one retrain trains on: the
workflow with the window applied (``mode: rolling``) or as written (``mode: fixed``), the data version
(:mod:`tasks.core.data.version`, the one definition) and the configuration hash (the resolved YAML plus
the window settings). :func:`previous_on_same_data` is the "no new data" gate's question to the
registry and :func:`stale_data_reason` the stale-feed alarm's rule.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from registry import ModelFilter, ModelInfo, ModelRegistry
from registry.settings import Settings
from tasks.core.data.version import DataVersion, data_version
from tasks.core.errors import PipelineError
from tasks.core.qlib.session import forget_stale_data, init_from_qlib_init
from tasks.core.qlib.training import Logger, qlib_step
from tasks.core.qlib.workflow_config import WorkflowConfig, load_workflow_config
from tasks.core.windows.placement import (
    Window,
    apply_window,
    feature_lookback,
    handler_fields,
    label_horizon,
    scheduled_window,
)
from tasks.core.windows.settings import WindowSettings

CONFIG_HASH_TAG = "config_hash"
DATA_VERSION_TAG = "data_version"


@dataclass(frozen=True)
class ResolvedRun:
    """What one retrain trains on."""

    cfg: WorkflowConfig
    window: Window | None
    data_version: DataVersion
    config_hash: str
    settings: WindowSettings
    horizon: int | None = None

    @property
    def segments(self) -> dict[str, list[str]]:
        """The exact segments trained, validated and evaluated on."""
        return self.window.segments_text() if self.window else self.cfg.dataset_info.segments

    def dataset_extras(self) -> dict[str, Any]:
        """What the registry records with the version's dataset info."""
        extras: dict[str, Any] = {
            "segments": self.segments,
            "data_version": str(self.data_version),
            "window": self.settings.model_dump(mode="json"),
            "config_hash": self.config_hash,
        }
        if self.window is not None:
            extras.update(self.window.handler_times(), label_horizon=self.horizon, trunc_days=self.window.trunc_days)
        return extras

    def tags(self) -> dict[str, str]:
        """Registry tags the gate filters on."""
        return {CONFIG_HASH_TAG: self.config_hash, DATA_VERSION_TAG: str(self.data_version)}


def config_hash(cfg: WorkflowConfig, settings: WindowSettings) -> str:
    """sha256 (16 hex) of the resolved YAML plus the window settings: the gate's notion of "the same run"."""
    payload = json.dumps(
        {"workflow": cfg.raw, "windows": settings.model_dump(mode="json")}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def resolve_run(
    cfg: WorkflowConfig, settings: WindowSettings, *, qlib_settings: Settings, logger: Logger | None = None
) -> ResolvedRun:
    """Apply the window settings to ``cfg`` on its data calendar; refused (WindowError) when they do not fit."""
    version = data_version(cfg.provider_uri)
    forget_stale_data(cfg.provider_uri, version)
    digest = config_hash(cfg, settings)
    if settings.mode == "fixed":
        return ResolvedRun(cfg, None, version, digest, settings)
    with qlib_step(logger):
        init_from_qlib_init(cfg.qlib_init, qlib_settings)
        features, labels = handler_fields(cfg.dataset["kwargs"]["handler"])
        horizon = label_horizon(labels)
        window = scheduled_window(
            None,
            train_days=settings.train_days,
            valid_days=settings.valid_days,
            test_days=settings.test_days,
            horizon=horizon,
            lookback=feature_lookback(features),
            kind=settings.kind,
            anchor=None if settings.anchor == "latest" else settings.anchor,
            train_start=(cfg.dataset_info.segments.get("train") or [None])[0],
        )
    rolled = load_workflow_config(apply_window(cfg.raw, window), provider_uri=cfg.provider_uri)
    rolled = rolled.model_copy(update={"source": cfg.source})
    return ResolvedRun(rolled, window, version, digest, settings, horizon)


def previous_on_same_data(registry: ModelRegistry, model_name: str, run: ResolvedRun) -> ModelInfo | None:
    """The newest version of ``model_name`` trained from the same configuration, if it saw the same data."""
    newest = registry.list_models(
        ModelFilter(model_name=model_name, tags={CONFIG_HASH_TAG: run.config_hash}, limit=1)
    )
    if newest and newest[0].tags.get(DATA_VERSION_TAG) == str(run.data_version):
        return newest[0]
    return None


class StaleDataError(PipelineError):
    """The data calendar ends too long ago: the data feed is broken."""


def weekdays_behind(calendar_end: date, today: date) -> int:
    """Weekdays after ``calendar_end`` up to and including ``today``."""
    one = timedelta(days=1)
    return int(np.busday_count(calendar_end + one, today + one)) if today > calendar_end else 0


def declares_synthetic_calendar(provider_uri: str | Path) -> bool:
    """Synthetic data keeps its own calendar, not a market's: how long ago it ends says nothing about a feed,
    so the stale-data alarm does not apply to it."""
    from tasks.core.data.ingest.calendar import declared_calendar

    return (declared_calendar(Path(provider_uri).expanduser()) or "").lower() == "synthetic"


def trading_days_behind(calendar_end: date, today: date, calendar: str) -> int:
    """The exchange's trading days after ``calendar_end`` up to and including ``today`` (weekdays for a
    'synthetic' calendar, and past the trading-calendar library's last session)."""
    from tasks.core.data.ingest.calendar import trading_days_between

    return trading_days_between(calendar, calendar_end, today)


def stale_data_reason(
    version: DataVersion, max_age_days: int | None, timezone: str, now: datetime | None = None,
    calendar: str = "cn",
) -> str | None:
    """Why the data is stale (one line), or None when it is fresh enough or the alarm is off."""
    if max_age_days is None:
        return None
    today = (now or datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone)).date()
    behind = trading_days_behind(version.calendar_end, today, calendar)
    if behind <= max_age_days:
        return None
    return (
        f"stale data: the calendar ends {version.calendar_end.isoformat()}, {behind} trading days ({calendar}) before "
        f"{today.isoformat()} ({timezone}); more than max_data_age_days={max_age_days} means a broken data feed"
    )
