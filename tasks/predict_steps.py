"""Prefect task for the predict flow; its body is one call into ``tasks.core.predictions.daily``."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from registry.errors import ModelRegistryError
from registry.settings import load_settings
from tasks.core.data.version import DataVersionError
from tasks.core.errors import PipelineError
from tasks.core.predictions.daily import predict_name
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
