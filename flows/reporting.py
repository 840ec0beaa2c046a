"""What the Prefect UI shows: the promotion comparison and the cleanup report as table and Markdown artifacts,
and the approval form's text. Both reports are computed elsewhere (`registry.views.promotion`,
`registry.retention`); this module only draws them."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from registry.retention import CleanupReport
from registry.views.promotion import MetricRow, PromotionComparison
from tasks.core.approvals.champion import ChampionScore


def artifact_key(prefix: str, model_name: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def ui_links(comparison: PromotionComparison) -> str:
    """Markdown links to the candidate's page and its comparison with production on `qmp ui`, when QMP_UI_URL
    says where the page is served."""
    base = os.environ.get("QMP_UI_URL", "").strip().rstrip("/")
    if not base:
        return ""
    candidate = quote(comparison.candidate_id, safe="")
    links = [f"[{comparison.candidate_id} in the registry]({base}/versions/{candidate})"]
    if comparison.production_id is not None:
        links.append(f"[compared with {comparison.production_id}]({base}/compare?"
                     f"a={quote(comparison.production_id, safe='')}&b={candidate})")
    return " · ".join(links)


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


def _markdown_rows(rows: list[MetricRow], with_window: bool) -> list[str]:
    """Short numbers and few columns: the approval form must fit the Resume dialog (~470 px) unscrolled."""
    header = ["metric", "candidate", "production", *(["on window"] if with_window else []), "diff"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for row in rows:
        cells = [row.name, _short(row.candidate), _short(row.production),
                 *([_short(row.production_on_window)] if with_window else []), _short(row.difference, signed=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _short(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3g}" if signed else f"{value:.4g}"


def comparison_markdown(comparison: PromotionComparison, *, key_only: bool = False) -> str:
    """The comparison as Markdown (the artifact and the approval form): the decision and its reasons, the primary
    and guardrail metrics, then (unless `key_only`) the other metrics below."""
    versus = comparison.production_id or "no production model"
    lines = [f"### {comparison.candidate_id} vs {versus}", "",
             f"**Decision: {comparison.decision.value}**", "", *(f"- {reason}" for reason in comparison.reasons), ""]
    if comparison.segments or comparison.data_version:
        window = ", ".join(f"{name} {' to '.join(bounds)}" for name, bounds in comparison.segments.items())
        lines += [f"Window: {window or '-'}; data version: {comparison.data_version or '-'}", ""]
    rows = comparison.rows()
    with_window = any(row.production_on_window is not None for row in rows)
    lines += _markdown_rows([row for row in rows if row.role != "other"], with_window)
    others = [row for row in rows if row.role == "other"]
    if others and not key_only:
        lines += ["", "Other metrics:", "", *_markdown_rows(others, with_window)]
    if links := ui_links(comparison):
        lines += ["", links]
    return "\n".join(lines)


def publish_decision(model_name: str, comparison: PromotionComparison) -> None:
    """Table artifact keyed by model name (so the UI keeps its history) and the Markdown with the reasons.

    The table holds metrics only (primary and guardrails first); the decision is in its description."""
    rows = [_table_row(row) for row in comparison.rows()]
    versus = comparison.production_id or "no production model"
    create_table_artifact(key=artifact_key("model-comparison", model_name), table=rows,
                          description=f"{comparison.candidate_id} vs {versus}: {comparison.decision.value} "
                                      f"({'; '.join(comparison.reasons)})")
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
    scored = f"production {champion.model_id} re-scored on {window} with its own dataset state in {champion.seconds:.1f} s"
    return f"{scored} ({champion.note})" if champion.note else scored


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


def publish_signals(result: Any) -> None:
    """The top-k instruments of the last predicted day as a table artifact keyed by model name."""
    create_table_artifact(
        key=artifact_key("signals", result.model_name),
        table=[{"rank": rank, "instrument": inst, "score": f"{score:.6g}"}
               for rank, (inst, score) in enumerate(result.top, start=1)],
        description=f"top {len(result.top)} of {result.model_name} on {result.last_day} "
                    f"({', '.join(result.model_ids)}; data {result.data_version})",
    )


def publish_live(model_name: str, report_markdown: str, description: str) -> None:
    """The name's live record and drift verdict (`registry.views.monitor.markdown`) as a Markdown artifact."""
    create_markdown_artifact(key=artifact_key("live", model_name), markdown=report_markdown, description=description)
