"""What the Prefect UI shows for a model decision: a comparison table artifact and a markdown summary.

With the production model re-scored on the candidate's window (``ChampionScore``), the table shows the
window, the candidate's metrics, production's metrics on that window (what the policy compared) and
production's original, registration-time metrics; the difference is against the re-scored numbers.
"""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from registry import ModelInfo
from registry.policy import Decision
from tasks.core.champion import ChampionScore


def artifact_key(prefix: str, model_name: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def comparison_rows(
    candidate: ModelInfo, production: ModelInfo | None, champion: ChampionScore | None = None
) -> list[dict[str, str]]:
    """One row per metric: candidate, production on the window, production as registered, difference."""
    original = production.performance_metrics if production else {}
    on_window = champion.metrics if champion is not None else {}
    compared = on_window if champion is not None else original
    rows = []
    for name in sorted(set(candidate.performance_metrics) | set(original) | set(on_window)):
        new_value, old_value = candidate.performance_metrics.get(name), compared.get(name)
        rows.append({
            "metric": name,
            "candidate": _fmt(new_value),
            "production on window": _fmt(on_window.get(name)) if champion is not None else "-",
            "production (registered)": _fmt(original.get(name)),
            "difference": "-" if new_value is None or old_value is None else f"{new_value - old_value:+.6g}",
        })  # fmt: skip
    return rows


def window_line(champion: ChampionScore | None) -> str:
    """Where the two models were compared, or why they could not be."""
    if champion is None:
        return "no production model to compare on the window"
    window = f"{champion.window[0]}..{champion.window[1]}"
    if champion.error:
        return f"window {window}: production {champion.model_id} could not be scored ({champion.error})"
    return f"window {window}: production {champion.model_id} re-scored with its own dataset state in {champion.seconds:.1f} s"


def comparison_markdown(
    candidate: ModelInfo, production: ModelInfo | None, decision: Decision, champion: ChampionScore | None = None
) -> str:
    """The comparison as a markdown table plus the decision's reasons (also the approval form's text)."""
    title = production.model_id if production else "no production model"
    rows = comparison_rows(candidate, production, champion)
    lines = [
        f"### {candidate.model_id} vs {title}",
        "",
        window_line(champion) if production else "",
        "",
        "| metric | candidate | production on window | production (registered) | difference |",
        "|---|---:|---:|---:|---:|",
        *(f"| {' | '.join(r.values())} |" for r in rows),
        "",
        f"**Decision: {decision.action.value}**",
        "",
        *(f"- {reason}" for reason in decision.reasons),
    ]
    return "\n".join(lines)


def history_summary(candidate: ModelInfo, decision: Decision, champion: ChampionScore | None, metric: str) -> str:
    """One line for the registry history: window, both metric sets' primary metric, decision and reasons."""
    parts = [window_line(champion), f"candidate {metric} {_fmt(candidate.performance_metrics.get(metric))}"]
    if champion is not None:
        parts.append(f"production on window {metric} {_fmt(champion.metrics.get(metric))}")
        parts.append(f"production as registered {metric} {_fmt(champion.original_metrics.get(metric))}")
    parts.append(f"decision {decision.action.value}: " + "; ".join(decision.reasons))
    return "; ".join(parts)


def publish_decision(
    candidate: ModelInfo, production: ModelInfo | None, decision: Decision, champion: ChampionScore | None = None
) -> None:
    """Table artifact keyed by model name (so the UI keeps its history) and the markdown reasons."""
    rows = comparison_rows(candidate, production, champion)
    rows.append({
        "metric": "decision", "candidate": decision.action.value, "production on window": "",
        "production (registered)": "", "difference": "",
    })  # fmt: skip
    create_table_artifact(
        key=artifact_key("model-comparison", candidate.model_name),
        table=rows,
        description=f"{candidate.model_id} vs {production.model_id if production else 'no production model'}; "
        + window_line(champion),
    )
    create_markdown_artifact(
        key=artifact_key("model-decision", candidate.model_name),
        markdown=comparison_markdown(candidate, production, decision, champion),
        description=f"Promotion decision for {candidate.model_id}",
    )
