"""Rich rendering shared by the CLI commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.table import Table

from registry import ModelEvent, ModelInfo
from registry.policy import ordered_metrics

# Piped output (CI logs, `| less`) gets room for the wide model tables instead of Rich's 80 columns.
_width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(width=_width)
err_console = Console(stderr=True, width=_width)

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


def comparison_table(
    candidate: Mapping[str, float], production: Mapping[str, float] | None, title: str = "Candidate vs production",
    key_metrics: Sequence[str] = (),
) -> Table:
    """The metrics the decision rests on first (in the policy's order), a rule, then the rest alphabetically."""
    table = Table(title=title)
    for column in ("metric", "candidate", "production", "difference"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    first, rest = ordered_metrics({*candidate, *(production or {})}, key_metrics)
    for group in (first, rest):
        if group is rest and first and rest:
            table.add_section()
        for name in group:
            new, old = candidate.get(name), (production or {}).get(name)
            diff = None if new is None or old is None else new - old
            table.add_row(name, fmt(new), fmt(old), "-" if diff is None else f"{diff:+.4f}")
    return table
