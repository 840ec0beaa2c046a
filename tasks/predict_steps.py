"""Prefect tasks for the predict flow: predict a name, score its live days, check its drift (each body one call
into ``tasks.core.predictions``)."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from registry.drift import DriftResult
from registry.errors import ModelRegistryError
from registry.settings import load_settings
from registry.views.monitor import markdown, monitor_report
from tasks import events
from tasks.core.data.version import DataVersionError
from tasks.core.errors import PipelineError
from tasks.core.lifecycle import open_registry
from tasks.core.predictions.daily import predict_name
from tasks.core.predictions.drift import check_drift
from tasks.core.predictions.live import update_name
from tasks.registry_steps import current_flow_run_id


class NameResult(BaseModel):
    """One name's predict outcome as the flow returns it (``error`` set when it failed, nothing written)."""

    model_name: str
    message: str
    error: bool = False
    written_days: list[date] = []
    model_ids: list[str] = []
    missing: int = 0
    data_version: str = ""
    last_day: date | None = None
    top: list[tuple[str, float]] = []


# Idempotent (stored days are skipped), but a failure here is the data or the model, not a blip: no retries.
@task(name="predict model name", cache_policy=NO_CACHE)
def predict_model_name(
    model_name: str, from_date: date | None, to_date: date | None, recompute: bool, top_k: int,
    provider_uri: str | None,
) -> NameResult:
    """Predict one name's new days; the known failures come back as one line, with nothing written."""
    try:
        outcome = predict_name(
            model_name, start=from_date, end=to_date, recompute=recompute, top_k=top_k, provider_uri=provider_uri,
            settings=load_settings(),
            flow_run_id=current_flow_run_id(), logger=get_run_logger(),
        )
    except (ModelRegistryError, PipelineError, DataVersionError) as exc:
        return NameResult(model_name=model_name, message=f"{model_name}: {exc}", error=True)
    return NameResult(
        model_name=model_name, message=outcome.message, written_days=outcome.written_days,
        model_ids=sorted({d.model_id for d in outcome.days}), missing=sum(d.missing for d in outcome.days),
        data_version=outcome.data_version, last_day=outcome.days[-1].trading_date if outcome.days else None,
        top=outcome.top,
    )


class MonitorResult(BaseModel):
    """One name's live step: the days scored against their label and the drift verdict."""

    model_name: str
    message: str
    error: bool = False
    live_days: list[date] = []
    waiting_days: int = 0
    drift: DriftResult | None = None
    new_drift_episode: bool = False
    report_markdown: str = ""  # the name's monitor report (registry.views.monitor), for the flow's artifact


# Idempotent (only days without live metrics are written); a failure is the data or the model: no retries.
@task(name="score live days", cache_policy=NO_CACHE)
def score_live_days(model_name: str, provider_uri: str | None) -> MonitorResult:
    """Store the live metrics of the name's days that became scorable; one line on a known failure."""
    try:
        outcome = update_name(model_name, settings=load_settings(), provider_uri=provider_uri,
                              flow_run_id=current_flow_run_id(), logger=get_run_logger())
    except (ModelRegistryError, PipelineError, DataVersionError) as exc:
        return MonitorResult(model_name=model_name, message=f"{model_name}: live metrics: {exc}", error=True)
    return MonitorResult(model_name=model_name, message=outcome.message, live_days=outcome.written_days,
                         waiting_days=outcome.waiting_days)


@task(name="check drift", cache_policy=NO_CACHE)
def check_name_drift(live: MonitorResult) -> MonitorResult:
    """The drift verdict of the name's production model; a new episode is recorded and `qmp.model.drift` emitted."""
    registry = open_registry(load_settings())
    check = check_drift(registry, live.model_name, flow_run_id=current_flow_run_id())
    if check is None:
        return live
    if check.new_episode:
        events.emit_drift(registry.get_model_info(check.result.model_id), check.result)
        get_run_logger().warning("%s: drift detected: %s", live.model_name, "; ".join(check.result.reasons))
    report = markdown(monitor_report(registry, live.model_name)) if registry.last_prediction_date(live.model_name) else ""
    return live.model_copy(update={"drift": check.result, "new_drift_episode": check.new_episode,
                                   "report_markdown": report})
