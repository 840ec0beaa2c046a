"""What the Prefect UI shows for a model decision: a comparison table artifact and a markdown summary."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from registry import ModelInfo
from registry.policy import Decision


def artifact_key(prefix: str, model_name: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def comparison_rows(candidate: ModelInfo, production: ModelInfo | None) -> list[dict[str, str]]:
    old = production.performance_metrics if production else {}
    rows = []
    for name in sorted(set(candidate.performance_metrics) | set(old)):
        new_value, old_value = candidate.performance_metrics.get(name), old.get(name)
        rows.append({
            "metric": name,
            "candidate": "-" if new_value is None else f"{new_value:.6g}",
            "production": "-" if old_value is None else f"{old_value:.6g}",
            "difference": "-" if new_value is None or old_value is None else f"{new_value - old_value:+.6g}",
        })
    return rows


def comparison_markdown(candidate: ModelInfo, production: ModelInfo | None, decision: Decision) -> str:
    """The comparison as a markdown table plus the decision's reasons (also the approval form's text)."""
    title = production.model_id if production else "no production model"
    lines = [
        f"### {candidate.model_id} vs {title}",
        "",
        "| metric | candidate | production | difference |",
        "|---|---:|---:|---:|",
        *(f"| {r['metric']} | {r['candidate']} | {r['production']} | {r['difference']} |" for r in comparison_rows(candidate, production)),
        "",
        f"**Decision: {decision.action.value}**",
        "",
        *(f"- {reason}" for reason in decision.reasons),
    ]
    return "\n".join(lines)


def publish_decision(candidate: ModelInfo, production: ModelInfo | None, decision: Decision) -> None:
    """Table artifact keyed by model name (so the UI keeps its history) and the markdown reasons."""
    rows = comparison_rows(candidate, production)
    rows.append({"metric": "decision", "candidate": decision.action.value, "production": "", "difference": ""})
    create_table_artifact(
        key=artifact_key("model-comparison", candidate.model_name),
        table=rows,
        description=f"{candidate.model_id} vs {production.model_id if production else 'no production model'}",
    )
    create_markdown_artifact(
        key=artifact_key("model-decision", candidate.model_name),
        markdown=comparison_markdown(candidate, production, decision),
        description=f"Promotion decision for {candidate.model_id}",
    )


def publish_signals(result: Any) -> None:
    """The top-k instruments of the last predicted day as a table artifact keyed by model name."""
    create_table_artifact(
        key=artifact_key("signals", result.model_name),
        table=[{"rank": rank, "instrument": inst, "score": f"{score:.6g}"}
               for rank, (inst, score) in enumerate(result.top, start=1)],
        description=f"top {len(result.top)} of {result.model_name} on {result.last_day} "
                    f"({', '.join(result.model_ids)}; data {result.data_version})",
    )
