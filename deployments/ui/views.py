"""What each page shows, computed once as plain data: the HTML page renders it, its `/api` twin returns it."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from deployments.ui.charts import Band, Chart, Line, line_chart
from registry import EvaluationSeries, ModelInfo, ModelRegistry, ModelStatus, browse
from registry.compare import ModelComparison, compare_models
from registry.comparison import PromotionComparison, compare_for_promotion
from registry.policy import Action, Decision, PromotionPolicy
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC

SERIES_TITLES = {DAILY_IC: "Daily IC", CUMULATIVE_EXCESS_RETURN: "Cumulative excess return vs benchmark (after costs)"}
SHOWN_METRICS = ("ic_mean", "rank_ic", "icir", "annualized_return", "information_ratio", "max_drawdown")
CHART_METRICS = ("rank_ic", "annualized_return")  # drawn beside the primary metric


class Frozen(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), frozen=True)


class OverviewRow(Frozen):
    summary: browse.NameSummary
    production_age_days: int | None  # since the production model was registered
    data_age_days: int | None  # since the newest data's last day
    production_stale: bool
    data_stale: bool


class OverviewView(Frozen):
    stale_days: int
    names: list[OverviewRow]
    pending_approvals: int
    generated_at: datetime


class ProductionPeriod(Frozen):
    model_id: str
    version: str
    start: datetime
    end: datetime | None  # None: still production


class Filters(Frozen):
    status: list[ModelStatus]
    min: dict[str, float]
    replay: str | None


class NameView(Frozen):
    name: browse.NamePage
    primary_metric: str
    chart_metrics: list[str]
    production_periods: list[ProductionPeriod]
    page: int
    per_page: int
    pages: int
    filters: Filters


class VersionView(Frozen):
    version: browse.VersionPage
    series: dict[str, EvaluationSeries | None]  # None: not recorded (evaluated before the registry kept them)


class CompareView(Frozen):
    first: ModelInfo
    second: ModelInfo
    comparison: ModelComparison
    cumulative_excess_return: dict[str, EvaluationSeries | None]


class ApprovalItem(Frozen):
    request: browse.PendingApproval
    production: ModelInfo | None
    # The candidate-vs-production comparison model of the approval form, from what the registry holds: the
    # primary metric is the registry's, the reasons are the request's (the flow's guardrails and its re-scoring
    # of production on the candidate's window are not in the registry).
    comparison: PromotionComparison
    resume_url: str | None  # the paused flow run in the Prefect UI, where its Resume form is


class ApprovalsView(Frozen):
    approvals: list[ApprovalItem]


def _now() -> datetime:
    return datetime.now(UTC)


def overview(registry: ModelRegistry, stale_days: int) -> OverviewView:
    now = _now()
    rows = []
    for summary in browse.overview(registry):
        production_age = (now - summary.production.created_at).days if summary.production else None
        data_age = (now.date() - summary.newest_data).days if summary.newest_data else None
        rows.append(OverviewRow(
            summary=summary, production_age_days=production_age, data_age_days=data_age,
            production_stale=production_age is not None and production_age > stale_days,
            data_stale=data_age is not None and data_age > stale_days,
        ))
    return OverviewView(stale_days=stale_days, names=rows, generated_at=now,
                        pending_approvals=sum(r.summary.pending_approvals for r in rows))


def production_periods(page: browse.NamePage) -> list[ProductionPeriod]:
    """Who was production when, from the name's history (oldest first)."""
    periods: list[ProductionPeriod] = []
    current: tuple[str, datetime] | None = None
    for event in page.production_events:
        if event.to_status == ModelStatus.PRODUCTION:
            if current is not None:
                periods.append(_period(page.model_name, current, event.created_at))
            current = (event.model_id, event.created_at)
        elif event.from_status == ModelStatus.PRODUCTION and current is not None and current[0] == event.model_id:
            periods.append(_period(page.model_name, current, event.created_at))
            current = None
    if current is not None:
        periods.append(_period(page.model_name, current, None))
    return periods


def _period(name: str, started: tuple[str, datetime], end: datetime | None) -> ProductionPeriod:
    model_id, start = started
    return ProductionPeriod(model_id=model_id, version=model_id.removeprefix(f"{name}_v"), start=start, end=end)


def name_view(
    registry: ModelRegistry, name: str, *, statuses: list[ModelStatus], min_metrics: dict[str, float],
    replay: str | None, page: int, per_page: int,
) -> NameView:
    result = browse.name_page(registry, name, statuses=statuses, min_metrics=min_metrics, replay_id=replay,
                              limit=per_page, offset=(page - 1) * per_page)
    return NameView(
        name=result, primary_metric=registry.primary_metric,
        chart_metrics=[registry.primary_metric, *(m for m in CHART_METRICS if m != registry.primary_metric)][:3],
        production_periods=production_periods(result), page=page, per_page=per_page,
        pages=max(1, math.ceil(result.total / per_page)),
        filters=Filters(status=statuses, min=min_metrics, replay=replay),
    )


def metric_charts(view: NameView) -> list[Chart]:
    """The primary metric and two others across the versions, production periods shaded."""
    points = view.name.chart
    end = max([p.created_at for p in points] + [_now()])
    bands = [Band(p.start, p.end or end, f"production: {p.version}") for p in view.production_periods]
    return [
        line_chart(f"metric-{metric}", metric, [Line(metric, [p.created_at for p in points],
                                                     [p.metrics.get(metric) for p in points],
                                                     [p.version for p in points])], bands)
        for metric in view.chart_metrics
    ]


def version_view(registry: ModelRegistry, name: str, version: str) -> VersionView:
    page = browse.version_page(registry, name, version)
    return VersionView(version=page, series={key: page.series.get(key) for key in (DAILY_IC, CUMULATIVE_EXCESS_RETURN)})


def series_chart(key: str, series: EvaluationSeries, name: str) -> Chart:
    return line_chart(key, SERIES_TITLES.get(key, key), [Line(name, list(series.dates), list(series.values))])


def compare_view(registry: ModelRegistry, first: str, second: str) -> CompareView:
    """Raises LookupError naming the first id that is not in the registry."""
    infos, series = browse.versions_with_series(registry, [first, second])
    for model_id in (first, second):
        if model_id not in infos:
            raise LookupError(model_id)
    return CompareView(
        first=infos[first], second=infos[second], comparison=compare_models(infos[first], infos[second]),
        cumulative_excess_return={m: series.get(m, {}).get(CUMULATIVE_EXCESS_RETURN) for m in (first, second)},
    )


def compare_chart(view: CompareView) -> Chart:
    lines = [Line(model_id, list(s.dates), list(s.values)) for model_id, s in view.cumulative_excess_return.items()
             if s is not None]
    return line_chart("compare-cum-excess-return", SERIES_TITLES[CUMULATIVE_EXCESS_RETURN], lines)


def approvals_view(registry: ModelRegistry, prefect_ui: str | None) -> ApprovalsView:
    pending = browse.pending_approvals(registry)
    production = browse.production_infos(registry, sorted({p.candidate.model_name for p in pending}))
    items = []
    for request in pending:
        current = production.get(request.candidate.model_name)
        decision = Decision(action=Action.NEEDS_APPROVAL, reasons=[request.reason] if request.reason else [])
        comparison = compare_for_promotion(request.candidate, current,
                                           PromotionPolicy(primary_metric=registry.primary_metric), decision)
        items.append(ApprovalItem(request=request, production=current, comparison=comparison,
                                  resume_url=flow_run_url(prefect_ui, request.flow_run_id)))
    return ApprovalsView(approvals=items)


def flow_run_url(prefect_ui: str | None, flow_run_id: str | None) -> str | None:
    """The flow run's page in the Prefect UI (its Resume form when paused)."""
    if not prefect_ui or not flow_run_id:
        return None
    return f"{prefect_ui}/runs/flow-run/{flow_run_id}"
