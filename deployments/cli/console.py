"""Rich rendering shared by the CLI commands (the reports themselves are computed in `registry/`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

from rich.console import Console
from rich.table import Table

from registry import ModelEvent, ModelInfo
from registry.retention import CleanupReport
from registry.views.promotion import PromotionComparison

# Piped output (CI logs, `| less`) gets room for the wide model tables instead of Rich's 80 columns, and its
# lines are never broken (a long path stays on one line, so the output can be searched).
_width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(width=_width, soft_wrap=_width is not None)
err_console = Console(stderr=True, width=_width, soft_wrap=_width is not None)

STATUS_STYLE = {"production": "bold green", "candidate": "yellow", "registered": "cyan", "archived": "dim"}
SHOWN_METRICS = ("ic_mean", "icir", "rank_ic", "annualized_return", "information_ratio", "max_drawdown")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def models_table(models: Iterable[ModelInfo], title: str = "Models") -> Table:
    table = Table(title=title)
    for column in ("model id", "version", "type", "status", "trained", *SHOWN_METRICS):
        table.add_column(column, justify="right" if column in SHOWN_METRICS else "left")
    for m in models:
        style = STATUS_STYLE.get(m.status.value, "")
        table.add_row(
            m.model_id, m.version, m.model_type, f"[{style}]{m.status.value}[/]", m.training_date.isoformat(),
            *(fmt(m.performance_metrics.get(k)) for k in SHOWN_METRICS),
        )
    return table


def history_table(events: Iterable[ModelEvent], title: str = "History") -> Table:
    table = Table(title=title)
    for column in ("time (UTC)", "model id", "event", "from", "to", "actor", "reason", "flow run"):
        table.add_column(column)
    for e in events:
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.model_id, e.event, e.from_status or "", e.to_status or "",
            e.actor, e.reason or "", (e.flow_run_id or "")[:8],
        )
    return table


def metrics_table(metrics: Mapping[str, float], title: str = "Metrics") -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, fmt(metrics[name]))
    return table


def promotion_table(comparison: PromotionComparison) -> Table:
    """The candidate-vs-production comparison: primary metric and guardrails first (in bold), then the rest."""
    versus = comparison.production_id or "no production model"
    table = Table(title=f"{comparison.candidate_id} vs {versus}", caption=f"decision: {comparison.decision.value}")
    for column in ("metric", "candidate", "production", "production on this window", "difference"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in comparison.rows():
        name = f"[bold]{row.name}[/] ({row.role})" if row.role != "other" else row.name
        diff = "-" if row.difference is None else f"{row.difference:+.4f}"
        table.add_row(name, fmt(row.candidate), fmt(row.production), fmt(row.production_on_window), diff)
    return table


def cleanup_table(report: CleanupReport) -> Table:
    """The per-name cleanup counts, totals last."""
    title = "Registry cleanup (dry run: nothing changed)" if report.dry_run else "Registry cleanup"
    table = Table(title=title)
    columns = ("model name", "archived", "purged", "bytes reclaimed", "orphans removed")
    for column in columns:
        table.add_column(column, justify="left" if column == "model name" else "right")
    for row in report.rows:
        table.add_row(row.model_name, str(row.archived), str(row.purged), str(row.bytes_reclaimed),
                      str(row.orphans_removed))
    t = report.totals
    table.add_section()
    table.add_row("[bold]total[/]", str(t.archived), str(t.purged), str(t.bytes_reclaimed), str(t.orphans_removed))
    return table
