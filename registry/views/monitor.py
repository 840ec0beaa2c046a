"""How a name's production model does live: one report computed from the registry, drawn by `qmp monitor`,
the predict flow's artifact and the web page."""

from __future__ import annotations

import statistics
from datetime import date

from pydantic import BaseModel, ConfigDict

from registry.drift import DriftResult, expectation_of, judge_drift
from registry.errors import InvalidArgumentError, ModelNotFoundError
from registry.live import LiveDay
from registry.service import ModelRegistry

SHORT_WINDOW = 20  # days of the short live mean IC


class MonitorReport(BaseModel):
    """A name's production model and its live record over the last ``days`` live days."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    production_model_id: str
    days: int
    live_days_total: int  # every live day of the name
    production_live_days: int  # of them, scored from the production model's predictions
    first_day: date | None
    last_day: date | None
    mean_ic_short: float | None  # over the last min(20, days) live days
    mean_ic_long: float | None  # over the last `days` live days
    mean_rank_ic_long: float | None
    cumulative_signal_return: float | None  # summed over the last `days` live days
    drift: DriftResult
    recent: list[LiveDay]


def drift_of(registry: ModelRegistry, model_name: str) -> DriftResult | None:
    """The drift verdict of the name's production model on its own live days (None without production)."""
    production = registry.get_production_model(model_name)
    if production is None:
        return None
    live = [day.ic for day in registry.live_metrics(model_name) if day.model_id == production.model_id]
    expectation = expectation_of(registry.get_evaluation_series(production.model_id), production.performance_metrics)
    return judge_drift(model_name, production.model_id, live, expectation, registry.drift_rule(model_name))


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def monitor_report(registry: ModelRegistry, model_name: str, days: int = 60) -> MonitorReport:
    """The report of ``model_name`` (ModelNotFoundError: no production model or no stored predictions yet)."""
    if days < 1:
        raise InvalidArgumentError(f"--days must be at least 1, got {days}")
    drift = drift_of(registry, model_name)
    if drift is None:
        raise ModelNotFoundError(f"no production model for {model_name!r}: promote one first")
    if registry.last_prediction_date(model_name) is None:
        raise ModelNotFoundError(f"no stored predictions for {model_name!r} yet: run `qmp predict --model-name "
                                 f"{model_name}` first")
    live = registry.live_metrics(model_name)
    recent = live[-days:]
    short = recent[-min(SHORT_WINDOW, days):]
    returns = [d.signal_return for d in recent if d.signal_return is not None]
    return MonitorReport(
        model_name=model_name, production_model_id=drift.model_id, days=days, live_days_total=len(live),
        production_live_days=sum(1 for d in live if d.model_id == drift.model_id),
        first_day=live[0].trading_date if live else None, last_day=live[-1].trading_date if live else None,
        mean_ic_short=_mean([d.ic for d in short]), mean_ic_long=_mean([d.ic for d in recent]),
        mean_rank_ic_long=_mean([d.rank_ic for d in recent]),
        cumulative_signal_return=sum(returns) if returns else None, drift=drift, recent=recent,
    )


def markdown(report: MonitorReport) -> str:
    """The report as Markdown (the predict flow's artifact)."""
    drift = report.drift
    expectation = (f"{drift.expectation.mean:.4f} ± {drift.expectation.std:.4f} ({drift.expectation.source})"
                   if drift.expectation else "none")
    rows = [
        ("production", report.production_model_id),
        ("live days", f"{report.live_days_total} ({report.production_live_days} of the production model)"),
        (f"mean live IC, last {min(SHORT_WINDOW, report.days)} days", number(report.mean_ic_short)),
        (f"mean live IC, last {report.days} days", number(report.mean_ic_long)),
        ("expectation (daily IC)", expectation),
        (f"cumulative signal return, last {report.days} days", number(report.cumulative_signal_return)),
        ("drift", f"**{drift.verdict.value}**: " + "; ".join(drift.reasons)),
        ("rule", drift.rule.describe()),
    ]
    lines = [f"# {report.model_name} live", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


def number(value: float | None) -> str:
    """A metric as the CLI and the artifact show it (``-`` when undefined)."""
    return "-" if value is None else f"{value:.4f}"
