"""What each page shows, computed once as plain data: the HTML page renders it, its `/api` twin returns it.

Candidates awaiting approval come from `tasks.core.approvals.requests.pending_approvals`, the function `qmp approvals
list` renders: the overview's counts, a name's notice and the approvals page are that one query's result.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from deployments.ui.charts import Band, Chart, Line, line_chart
from registry import EvaluationSeries, ModelInfo, ModelRegistry, ModelStatus
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC
from registry.views import browse
from registry.views.side_by_side import ModelComparison, compare_models
from tasks.core.approvals.requests import PendingApproval, pending_approvals

SERIES_TITLES = {DAILY_IC: "Daily IC", CUMULATIVE_EXCESS_RETURN: "Cumulative excess return vs benchmark (after costs)"}
SHOWN_METRICS = ("ic_mean", "rank_ic", "icir", "annualized_return", "information_ratio", "max_drawdown")
CHART_METRICS = ("rank_ic", "annualized_return")  # drawn beside the primary metric


class Frozen(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), frozen=True)


class OverviewRow(Frozen):
    summary: browse.NameSummary
    pending_approvals: int  # candidates of the name awaiting a person's decision
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
    replay_id: str | None


class NameView(Frozen):
    name: browse.NamePage
    pending: list[PendingApproval]  # of the live name (none on a replay's page)
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
    request: PendingApproval  # as `qmp approvals list` shows it: the comparison the person is asked to judge
    version: str  # the candidate's
    production_version: str | None  # of the production model when the approval was requested
    production_now: ModelInfo | None  # today's production model, when it changed since the request
    resume_url: str | None  # the paused flow run in the Prefect UI, where its Resume form is


class ApprovalsView(Frozen):
    approvals: list[ApprovalItem]
    primary_metric: str


def _now() -> datetime:
    return datetime.now(UTC)


def overview(registry: ModelRegistry, stale_days: int) -> OverviewView:
    now = _now()
    summaries = browse.overview(registry)
    waiting = Counter(p.model_name for p in pending_approvals(registry, now=now))
    rows = []
    for summary in summaries:
        production_age = (now - summary.production.created_at).days if summary.production else None
        data_age = (now.date() - summary.newest_data).days if summary.newest_data else None
        rows.append(OverviewRow(
            summary=summary, pending_approvals=waiting[summary.model_name], production_age_days=production_age,
            data_age_days=data_age,
            production_stale=production_age is not None and production_age > stale_days,
            data_stale=data_age is not None and data_age > stale_days,
        ))
    return OverviewView(stale_days=stale_days, names=rows, generated_at=now, pending_approvals=sum(waiting.values()))


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
    replay_id: str | None, page: int, per_page: int,
) -> NameView:
    """Raises browse.UnknownName / browse.UnknownReplay."""
    result = browse.name_page(registry, name, statuses=statuses, min_metrics=min_metrics, replay_id=replay_id,
                              limit=per_page, offset=(page - 1) * per_page)
    pending = [] if result.replay_id is not None else pending_approvals(registry, model_name=result.model_name)
    return NameView(
        name=result, pending=pending, primary_metric=registry.primary_metric,
        chart_metrics=[registry.primary_metric, *(m for m in CHART_METRICS if m != registry.primary_metric)][:3],
        production_periods=production_periods(result), page=page, per_page=per_page,
        pages=max(1, math.ceil(result.total / per_page)),
        filters=Filters(status=statuses, min=min_metrics, replay_id=result.replay_id),
    )


def metric_charts(view: NameView) -> list[Chart]:
    """The primary metric and two others across the versions, production periods shaded."""
    points = view.name.chart
    end = _now()  # a period still running is clipped at the last point by the chart
    bands = [Band(p.start, p.end or end, p.version) for p in view.production_periods]
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


def _version_of(model_id: str, name: str) -> str:
    return model_id.removeprefix(f"{name}_v")


def approvals_view(registry: ModelRegistry, prefect_ui: str | None) -> ApprovalsView:
    pending = pending_approvals(registry)
    production = browse.production_infos(registry, sorted({p.model_name for p in pending}))
    items = []
    for request in pending:
        current = production.get(request.model_name)
        changed = current is not None and current.model_id != request.production_model_id
        asked = request.production_model_id
        items.append(ApprovalItem(
            request=request, version=_version_of(request.model_id, request.model_name),
            production_version=_version_of(asked, request.model_name) if asked else None,
            production_now=current if changed else None, resume_url=flow_run_url(prefect_ui, request.flow_run_id),
        ))
    return ApprovalsView(approvals=items, primary_metric=registry.primary_metric)


def flow_run_url(prefect_ui: str | None, flow_run_id: str | None) -> str | None:
    """The flow run's page in the Prefect UI (its Resume form when paused)."""
    if not prefect_ui or not flow_run_id:
        return None
    return f"{prefect_ui}/runs/flow-run/{quote(flow_run_id, safe='')}"
