"""Prefect events for automations: registry changes (`qmp.model.registered|promoted|rolled_back`), a new drift
episode of a production model (`qmp.model.drift`) and a stale data feed (`qmp.data.stale`)."""

from __future__ import annotations

import os
import sys
from typing import Any

from registry import ModelInfo
from registry.drift import DriftResult


def _prefect_is_listening() -> bool:
    """Inside a flow run, or with PREFECT_API_URL set: outside both, no server could receive an event, and
    emitting would start Prefect's temporary local API just to drop it."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" not in sys.modules:  # no flow run without Prefect loaded
        return False
    from prefect.runtime import flow_run

    return flow_run.get_id() is not None


def emit_model_event(event: str, info: ModelInfo, **payload: Any) -> None:
    """Emit `qmp.model.<event>` about `info` (Prefect is imported only here: the CLI stays light)."""
    if not _prefect_is_listening():
        return
    from prefect.events import emit_event

    emit_event(
        event=f"qmp.model.{event}",
        resource={"prefect.resource.id": f"qmp.model.{info.model_id}", "qmp.model-name": info.model_name},
        payload={"model_id": info.model_id, "model_name": info.model_name, "version": info.version, **payload},
    )


def emit_registered(info: ModelInfo) -> None:
    """Emit `qmp.model.registered` once `info` is in the registry."""
    emit_model_event("registered", info, status=info.status.value, metrics=info.performance_metrics)


def emit_promoted(new: ModelInfo, previous: ModelInfo | None, *, actor: str | None, reason: str | None) -> None:
    """Emit `qmp.model.promoted` once `new` is production (`previous` is the production model it replaced)."""
    emit_model_event("promoted", new, previous=previous.model_id if previous else None, actor=actor, reason=reason)


def emit_rolled_back(new: ModelInfo, previous: ModelInfo | None, *, actor: str | None, reason: str | None) -> None:
    """Emit `qmp.model.rolled_back` once `new` is production again (`previous` is the one rolled back)."""
    emit_model_event("rolled_back", new, previous=previous.model_id if previous else None, actor=actor, reason=reason)


def emit_drift(info: ModelInfo, result: DriftResult) -> None:
    """Emit `qmp.model.drift`: a new drift episode of `info`, the name's production model."""
    expectation = result.expectation.mean if result.expectation else None
    emit_model_event("drift", info, live_mean_ic=result.live_mean_ic, expectation=expectation,
                     window=result.rule.window, live_days=result.live_days, rule=result.rule.model_dump(),
                     reasons=result.reasons)


def emit_stale_data(model_name: str, provider_uri: str, calendar_end: str, reason: str) -> None:
    """Emit ``qmp.data.stale``: the data calendar of ``provider_uri`` ends too long ago."""
    if not _prefect_is_listening():
        return
    from prefect.events import emit_event

    emit_event(
        event="qmp.data.stale",
        resource={"prefect.resource.id": f"qmp.data.{provider_uri}", "qmp.model-name": model_name},
        payload={"model_name": model_name, "provider_uri": provider_uri, "calendar_end": calendar_end, "reason": reason},
    )


def emit_data_updated(data_dir: str, calendar_end: str, data_version: str, days_added: int) -> None:
    """Emit ``qmp.data.updated``: an ingest added trading days to ``data_dir`` (the rolling retrain and the daily
    predictions have deployment triggers on it)."""
    if not _prefect_is_listening():
        return
    from prefect.events import emit_event

    emit_event(
        event="qmp.data.updated",
        resource={"prefect.resource.id": f"qmp.data.{data_dir}"},
        payload={"data_dir": data_dir, "calendar_end": calendar_end, "data_version": data_version,
                 "days_added": days_added},
    )
