"""What the Prefect UI shows: the promotion comparison and the cleanup report as table and Markdown artifacts,
and the approval form's text. Both reports are computed elsewhere (`registry.comparison`,
`registry.retention`); this module only draws them."""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from registry.comparison import MetricRow, PromotionComparison
from registry.retention import CleanupReport
from tasks.core.champion import ChampionScore


def artifact_key(prefix: str, model_name: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.6g}" if signed else f"{value:.6g}"


def _table_row(row: MetricRow) -> dict[str, str]:
    return {
        "metric": row.name, "role": row.role, "candidate": _number(row.candidate),
        "production": _number(row.production), "production on this window": _number(row.production_on_window),
        "difference": _number(row.difference, signed=True),
    }


def comparison_markdown(comparison: PromotionComparison, *, key_only: bool = False) -> str:
    """The comparison as Markdown: the full table for the artifact; with `key_only` (the approval form) only
    the primary and guardrail metrics. The decision and its reasons follow either way."""
    versus = comparison.production_id or "no production model"
    lines = [f"### {comparison.candidate_id} vs {versus}", ""]
    if comparison.segments or comparison.data_version:
        window = ", ".join(f"{name} {' to '.join(bounds)}" for name, bounds in comparison.segments.items())
        lines += [f"Window: {window or '-'}; data version: {comparison.data_version or '-'}", ""]
    lines += ["| metric | role | candidate | production | production on this window | difference |",
              "|---|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(_table_row(row).values()) + " |" for row in comparison.rows(key_only=key_only)]
    lines += ["", f"**Decision: {comparison.decision.value}**", "", *(f"- {reason}" for reason in comparison.reasons)]
    return "\n".join(lines)


def publish_decision(model_name: str, comparison: PromotionComparison) -> None:
    """Table artifact keyed by model name (so the UI keeps its history) and the Markdown with the reasons."""
    rows = [_table_row(row) for row in comparison.rows()]
    rows.append({"metric": "decision", "role": "", "candidate": comparison.decision.value, "production": "",
                 "production on this window": "", "difference": ""})
    versus = comparison.production_id or "no production model"
    create_table_artifact(key=artifact_key("model-comparison", model_name), table=rows,
                          description=f"{comparison.candidate_id} vs {versus}")
    create_markdown_artifact(key=artifact_key("model-decision", model_name), markdown=comparison_markdown(comparison),
                             description=f"Promotion decision for {comparison.candidate_id}")


def cleanup_markdown(report: CleanupReport) -> str:
    """The summary sentence, then the per-name table."""
    lines = [f"### Registry cleanup{' (dry run)' if report.dry_run else ''}", "", report.summary()]
    if report.rows:
        lines += ["", "| model name | archived | purged | bytes reclaimed | orphans removed |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r.model_name} | {r.archived} | {r.purged} | {r.bytes_reclaimed} | {r.orphans_removed} |"
                  for r in report.rows]
    return "\n".join(lines)


def publish_cleanup(report: CleanupReport) -> None:
    """The per-name counts as a table artifact (totals last) and the Markdown summary."""
    table = [row.model_dump() for row in [*report.rows, report.totals]]
    create_table_artifact(key="registry-cleanup", table=table, description="Registry cleanup: counts per model name")
    create_markdown_artifact(key="registry-cleanup-summary", markdown=cleanup_markdown(report),
                             description="Registry cleanup summary")


def scoring_note(champion: ChampionScore | None) -> str:
    """How production was scored on the candidate's window, or why it could not be."""
    if champion is None:
        return "no production model to re-score"
    window = f"{champion.window[0]}..{champion.window[1]}"
    if champion.error:
        return f"production {champion.model_id} could not be scored on {window} ({champion.error})"
    return f"production {champion.model_id} re-scored on {window} with its own dataset state in {champion.seconds:.1f} s"


def history_summary(comparison: PromotionComparison, scoring_note: str) -> str:
    """One line for the registry history: window, data version, the primary metric of the candidate, of
    production on the window and as registered, the decision and its reasons."""
    metric = comparison.primary_metric
    window = ", ".join(f"{name} {' to '.join(bounds)}" for name, bounds in comparison.segments.items())
    parts = [f"window {window or '-'}", f"data version {comparison.data_version or '-'}", scoring_note,
             f"candidate {metric} {_number(comparison.candidate_metrics.get(metric))}"]
    if comparison.production_id:
        parts += [f"production on window {metric} {_number(comparison.production_metrics_on_window.get(metric))}",
                  f"production as registered {metric} {_number(comparison.production_registered_metrics.get(metric))}"]
    parts.append(f"decision {comparison.decision.value}: " + "; ".join(comparison.reasons))
    return "; ".join(parts)
