"""What the Prefect UI shows for a model decision: a comparison table artifact and a markdown summary."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from registry import ModelInfo
from registry.policy import Decision, PromotionPolicy, ordered_metrics


def artifact_key(prefix: str, model_name: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def comparison_rows(candidate: ModelInfo, production: ModelInfo | None, names: Iterable[str]) -> list[dict[str, str]]:
    """One row per metric; 4 significant digits keep the table narrow enough for the Resume dialog."""
    old = production.performance_metrics if production else {}
    rows = []
    for name in names:
        new_value, old_value = candidate.performance_metrics.get(name), old.get(name)
        rows.append({
            "metric": name,
            "candidate": "-" if new_value is None else f"{new_value:.4g}",
            "production": "-" if old_value is None else f"{old_value:.4g}",
            "difference": "-" if new_value is None or old_value is None else f"{new_value - old_value:+.3g}",
        })
    return rows


def _markdown_table(rows: list[dict[str, str]]) -> list[str]:
    return [
        "| metric | candidate | production | diff |",
        "|---|---:|---:|---:|",
        *(f"| {r['metric']} | {r['candidate']} | {r['production']} | {r['difference']} |" for r in rows),
    ]


def comparison_markdown(
    candidate: ModelInfo, production: ModelInfo | None, decision: Decision, policy: PromotionPolicy
) -> str:
    """Decision and reasons, then the metrics it rests on, then the rest (also the approval form's text)."""
    title = production.model_id if production else "no production model"
    old = production.performance_metrics if production else {}
    first, rest = ordered_metrics({*candidate.performance_metrics, *old}, policy.key_metrics())
    lines = [
        f"### {candidate.model_id} vs {title}",
        "",
        f"**Decision: {decision.action.value}**",
        "",
        *(f"- {reason}" for reason in decision.reasons),
        "",
        *_markdown_table(comparison_rows(candidate, production, first)),
    ]
    if rest:
        lines += ["", "Other metrics:", "", *_markdown_table(comparison_rows(candidate, production, rest))]
    return "\n".join(lines)


def publish_decision(
    candidate: ModelInfo, production: ModelInfo | None, decision: Decision, policy: PromotionPolicy
) -> None:
    """Table artifact keyed by model name (so the UI keeps its history) and the markdown reasons.

    The table holds metrics only, the decision's metrics first; the decision is in its description.
    """
    old = production.performance_metrics if production else {}
    first, rest = ordered_metrics({*candidate.performance_metrics, *old}, policy.key_metrics())
    create_table_artifact(
        key=artifact_key("model-comparison", candidate.model_name),
        table=comparison_rows(candidate, production, first + rest),
        description=f"{candidate.model_id} vs {production.model_id if production else 'no production model'}: "
                    f"{decision.action.value} ({'; '.join(decision.reasons)})",
    )
    create_markdown_artifact(
        key=artifact_key("model-decision", candidate.model_name),
        markdown=comparison_markdown(candidate, production, decision, policy),
        description=f"Promotion decision for {candidate.model_id}",
    )
