"""The predict flow: for each name with a production model, score the new trading days and store them, then score
the stored days whose label has arrived (live metrics) and judge the production model's drift."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State
from pydantic import BaseModel, Field

from flows.concurrency import one_at_a_time
from flows.reporting import publish_live, publish_signals
from flows.run_names import stamped_run_name
from registry.models import NAME_PATTERN
from registry.settings import load_settings
from tasks.core.lifecycle import open_registry
from tasks.core.predictions.pending import NOTHING_TO_PREDICT, production_names
from tasks.predict_steps import (
    MonitorResult,
    NameResult,
    check_name_drift,
    predict_model_name,
    score_live_days,
)

OptionalModelName = Annotated[
    str | None, Field(title="Model name", description="Registry name to predict; empty: every name with a production model.",
                      pattern=NAME_PATTERN.pattern, max_length=100),
]


class PredictResult(BaseModel):
    results: list[NameResult]
    message: str
    monitoring: list[MonitorResult] = []


@flow(name="predict", flow_run_name=stamped_run_name("predict", "all"), log_prints=True)
def predict(
    model_name: OptionalModelName = None,
    from_date: Annotated[date | None, Field(title="From", description="First day (default: the day after the last stored prediction).")] = None,
    to_date: Annotated[date | None, Field(title="To", description="Last day (default: the data calendar's last day).")] = None,
    recompute: Annotated[bool, Field(title="Recompute", description="Replace the stored scores of from..to (corrected data).")] = False,
    top_k: Annotated[int, Field(ge=1, le=1000, title="Top k", description="Instruments in the signal artifact.")] = 20,
    provider_uri: Annotated[str | None, Field(title="Qlib data directory", description="Default: QMP_PROVIDER_URI.")] = None,
) -> State[PredictResult]:
    """Score the production model of each name on the trading days it has no signal for, and store them."""
    names = [model_name] if model_name else production_names(open_registry(load_settings()))
    if not names:
        return nothing_to_predict()
    results = [predict_one(name, from_date, to_date, recompute, top_k, provider_uri) for name in names]
    monitoring = [monitor_one(r.model_name, provider_uri) for r in results if not r.error]
    return final_state(results, monitoring)


def nothing_to_predict() -> State[PredictResult]:
    message = f"{NOTHING_TO_PREDICT}: no model name has a production model"
    get_run_logger().info(message)
    return Completed(message=message, data=PredictResult(results=[], message=message))


def predict_one(
    name: str, from_date: date | None, to_date: date | None, recompute: bool, top_k: int, provider_uri: str | None
) -> NameResult:
    """Predict one name (one run per name at a time), log the outcome and publish its top scores."""
    logger = get_run_logger()
    with one_at_a_time("predict", name):
        result = predict_model_name(name, from_date, to_date, recompute, top_k, provider_uri)
    if result.error:
        logger.error(result.message)
    else:
        logger.info(result.message)
        if result.top:
            publish_signals(result)
    return result


def monitor_one(name: str, provider_uri: str | None) -> MonitorResult:
    """Score the name's days whose label arrived, then judge its production model's drift (one run per name at
    a time, as predicting: a drift episode is recorded once)."""
    with one_at_a_time("predict", name):
        live = score_live_days(name, provider_uri)
        if live.error:
            get_run_logger().error(live.message)
            return live
        get_run_logger().info(live.message)
        checked = check_name_drift(live)
    if checked.report_markdown and checked.drift is not None:
        publish_live(name, checked.report_markdown, f"{name}: {checked.drift.verdict.value}")
    return checked


def final_state(results: list[NameResult], monitoring: list[MonitorResult] | None = None) -> State[PredictResult]:
    """Completed with every name's result, or Failed (with the same results) when a name failed."""
    message = "; ".join(r.message for r in results)
    outcome = PredictResult(results=results, message=message, monitoring=monitoring or [])
    if any(r.error for r in results) or any(m.error for m in outcome.monitoring):
        return Failed(message=message, data=outcome)
    return Completed(message=message, data=outcome)
