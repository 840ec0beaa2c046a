"""`qmp monitor [NAME]`: how each production model does live; `qmp monitor set NAME --window --z ...`: its drift
rule. Both read and write the registry only (no Prefect, no Qlib)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deployments.cli.console import console, fmt

if TYPE_CHECKING:
    from registry import ModelRegistry
    from registry.views.monitor import MonitorReport

RULE_OPTIONS = ("--window", "--z", "--floor", "--min-days")
BACKTEST_METRICS = ("annualized_return", "information_ratio", "max_drawdown", "benchmark_annualized_return",
                    "annualized_return_without_cost", "win_rate", "turnover")


def monitor_command(
    words: Annotated[list[str] | None, typer.Argument(
        help="NAME (default: every name with a production model), or `set NAME` with rule options.",
        show_default=False)] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=5000, help="Live days the report covers.")] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    window: Annotated[int | None, typer.Option("--window", help="set: live days the drift rule's mean IC spans.")] = None,
    z: Annotated[float | None, typer.Option("--z", help="set: standard errors below expectation that count as drift.")] = None,
    floor: Annotated[float | None, typer.Option("--floor", help="set: a mean live IC below this is drift.")] = None,
    min_days: Annotated[int | None, typer.Option("--min-days", help="set: live days before any verdict.")] = None,
    backtest: Annotated[bool, typer.Option("--backtest", help="NAME: Qlib's backtest of the stored signals (loads Qlib).")] = False,
    from_date: Annotated[str | None, typer.Option("--from", help="--backtest: first day YYYY-MM-DD (default: the first stored day).")] = None,
) -> None:
    """Live IC, signal return and drift verdict of each production model; `qmp monitor set NAME` sets its drift rule."""
    from deployments.cli.registry_access import existing_registry
    from registry.errors import InvalidArgumentError

    words = words or []
    changes = {"window": window, "z": z, "floor": floor, "min_days": min_days}
    if words[:1] == ["set"]:
        if len(words) != 2:
            raise InvalidArgumentError("usage: qmp monitor set NAME [--window N] [--z Z] [--floor F] [--min-days N]")
        with existing_registry() as registry:
            _set_rule(registry, words[1], changes)
        return
    if len(words) > 1:
        raise InvalidArgumentError(f"one model name at most, got {' '.join(words)!r}")
    if any(value is not None for value in changes.values()):
        raise InvalidArgumentError(f"{', '.join(RULE_OPTIONS)} change a rule: qmp monitor set NAME ...")
    if backtest or from_date is not None:
        if len(words) != 1 or not backtest:
            raise InvalidArgumentError("usage: qmp monitor NAME --backtest [--from YYYY-MM-DD]")
        _backtest(words[0], from_date, as_json)
        return
    with existing_registry() as registry:
        reports = _reports(registry, words[0] if words else None, days)
    if as_json:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in reports]))
        return
    for report in reports:
        console.print(monitor_table(report))


def _backtest(name: str, from_date: str | None, as_json: bool) -> None:
    """`qmp monitor NAME --backtest`: the paper backtest of the stored signals (Qlib is loaded here)."""
    from dataclasses import asdict
    from datetime import date

    from deployments.cli.registry_access import existing_registry
    from registry.errors import InvalidArgumentError
    from registry.settings import load_settings
    from tasks.core.predictions.backtest import paper_backtest

    try:
        first = date.fromisoformat(from_date) if from_date else None
    except ValueError:
        raise InvalidArgumentError(f"--from must be a date YYYY-MM-DD, got {from_date!r}") from None
    with existing_registry() as registry:
        result = paper_backtest(registry, name, settings=load_settings(), first=first)
    if as_json:
        console.print_json(json.dumps(asdict(result), default=str))
        return
    cached = " (cached)" if result.cached else ""
    table = Table(title=f"{name}: paper backtest {result.first}..{result.last}{cached}",
                  caption=f"stored signals, data version {result.data_version}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in BACKTEST_METRICS:
        table.add_row(key, fmt(result.metrics.get(key)))
    console.print(table)


def _set_rule(registry: ModelRegistry, name: str, changes: dict[str, float | int | None]) -> None:
    from registry.drift import make_rule

    rule = make_rule(registry.drift_rule(name), **changes)
    registry.set_drift_rule(name, rule)
    console.print(f"{name}: drift rule set: {rule.describe()}", highlight=False)


def _reports(registry: ModelRegistry, name: str | None, days: int) -> list[MonitorReport]:
    from registry import ModelFilter, ModelStatus
    from registry.errors import ModelNotFoundError
    from registry.views.monitor import monitor_report

    if name is not None:
        return [monitor_report(registry, name, days)]
    names = sorted({info.model_name for info in registry.list_models(ModelFilter(status=ModelStatus.PRODUCTION))})
    if not names:
        raise ModelNotFoundError("no model name has a production model")
    reports = [monitor_report(registry, n, days) for n in names if registry.last_prediction_date(n) is not None]
    if not reports:
        raise ModelNotFoundError(f"no stored predictions yet for {', '.join(names)}: run `qmp predict` first")
    return reports


def monitor_table(report: MonitorReport) -> Table:
    """One name's live record and drift verdict."""
    drift = report.drift
    style = "bold red" if drift.drifted else "green" if drift.verdict.value == "healthy" else "yellow"
    table = Table(title=f"{report.model_name}: {report.production_model_id}",
                  caption=f"[{style}]{drift.verdict.value}[/]: " + "; ".join(drift.reasons))
    table.add_column("")
    table.add_column("value", justify="right")
    expectation = (f"{drift.expectation.mean:.4f} ± {drift.expectation.std:.4f} ({drift.expectation.source})"
                   if drift.expectation else "-")
    span = f" ({report.first_day}..{report.last_day})" if report.first_day else ""
    rows = [
        ("live days", f"{report.live_days_total}{span}"),
        ("of the production model", str(report.production_live_days)),
        (f"mean live IC, last {min(20, report.days)} days", fmt(report.mean_ic_short)),
        (f"mean live IC, last {report.days} days", fmt(report.mean_ic_long)),
        (f"mean live Rank IC, last {report.days} days", fmt(report.mean_rank_ic_long)),
        ("expectation (daily IC)", expectation),
        (f"cumulative signal return, last {report.days} days", fmt(report.cumulative_signal_return)),
        ("drift threshold", fmt(drift.threshold)),
        ("rule", drift.rule.describe()),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table
