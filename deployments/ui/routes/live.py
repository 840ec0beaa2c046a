"""A name's live page: the production model's daily live IC against its expectation band, the cumulative
signal return and the drift verdict (`registry.views.monitor`), with its JSON twin."""

from __future__ import annotations

import statistics
from datetime import date

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from deployments.ui.charts import Band, Chart, Line, line_chart
from deployments.ui.context import Context, UIContext
from deployments.ui.errors import not_found
from registry import ModelRegistry
from registry.errors import ModelNotFoundError
from registry.statuses import EventKind
from registry.views.monitor import MonitorReport, monitor_report

router = APIRouter()
Days = Query(250, ge=1, le=5000, description="Live days shown.")


def live_data(ui: UIContext, name: str, days: int) -> MonitorReport:
    try:
        return monitor_report(ui.registry.get(), name, days)
    except ModelNotFoundError as exc:
        raise not_found(str(exc)) from None


def live_charts(report: MonitorReport, registry: ModelRegistry) -> list[Chart]:
    """Daily live IC with its rolling mean and the expectation band; the cumulative signal return; the
    production periods (each promotion) shaded."""
    xs = [day.trading_date for day in report.recent]
    ics = [day.ic for day in report.recent]
    window = report.drift.rule.window
    rolling = [_mean(ics[max(0, i + 1 - window):i + 1]) for i in range(len(ics))]
    lines = [Line("daily live IC", xs, ics), Line(f"{window}-day mean", xs, rolling)]
    expectation = report.drift.expectation
    if expectation is not None and xs:
        lines.append(Line("expectation", xs, [expectation.mean] * len(xs)))
        if report.drift.threshold is not None:
            lines.append(Line("drift threshold", xs, [report.drift.threshold] * len(xs)))
    cumulative: list[float | None] = []
    total = 0.0
    for day in report.recent:
        total += day.signal_return or 0.0
        cumulative.append(total)
    bands = _production_bands(registry, report.model_name, xs)
    return [line_chart("live-ic", "Live IC", lines, bands),
            line_chart("live-signal-return", "Cumulative signal return", [Line("signal return", xs, cumulative)],
                       bands)]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _production_bands(registry: ModelRegistry, name: str, xs: list[date]) -> list[Band]:
    if not xs:
        return []
    starts = [(e.created_at.date(), e.model_id) for e in registry.history(name)
              if e.event in (EventKind.PROMOTED, EventKind.ROLLED_BACK)]
    bands = []
    for index, (start, model_id) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else xs[-1]
        if end >= xs[0]:
            bands.append(Band(max(start, xs[0]), end, f"{model_id} in production from {start}"))
    return bands


@router.get("/models/{name}/live", response_class=HTMLResponse, include_in_schema=False)
def live_page(request: Request, ui: Context, name: str, days: int = Days) -> HTMLResponse:
    report = live_data(ui, name, days)
    return ui.render(request, "live.html", report=report, charts=live_charts(report, ui.registry.get()))


@router.get("/api/models/{name}/live", response_model=MonitorReport, tags=["pages"])
def live_api(ui: Context, name: str, days: int = Days) -> MonitorReport:
    """The name's live record over the last `days` live days and its drift verdict (as `qmp monitor --json`)."""
    return live_data(ui, name, days)
