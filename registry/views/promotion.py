"""The candidate-vs-production comparison, computed once as plain data and drawn by each renderer (Markdown
for Prefect artifacts and the approval form in `flows.reporting`, Rich in `deployments.cli.console`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.models import ModelInfo
from registry.policy import Action, Decision, PromotionPolicy, metric_difference

MetricRole = Literal["primary", "guardrail", "other"]


class MetricRow(BaseModel):
    """One metric of the comparison; `production` is production's value at its registration.

    `difference` is the candidate's minus production's (on the window when scored there), 0.0 when the two
    tie within numerical noise (:func:`registry.policy.metric_difference`).
    """

    name: str
    role: MetricRole
    candidate: float | None
    production: float | None
    production_on_window: float | None = None
    difference: float | None = None


class PromotionComparison(BaseModel):
    """What the policy compared and what it decided."""

    model_config = ConfigDict(protected_namespaces=())

    candidate_id: str
    production_id: str | None
    candidate_metrics: dict[str, float]
    # Production re-scored on the candidate's window and dataset (empty until windows roll forward).
    production_metrics_on_window: dict[str, float] = Field(default_factory=dict)
    production_registered_metrics: dict[str, float] = Field(default_factory=dict)
    segments: dict[str, list[str]] = Field(default_factory=dict)
    data_version: str | None = None
    decision: Action
    reasons: list[str]
    primary_metric: str
    guardrail_metrics: list[str] = Field(default_factory=list)

    def _role(self, name: str) -> MetricRole:
        if name == self.primary_metric:
            return "primary"
        return "guardrail" if name in self.guardrail_metrics else "other"

    def rows(self, *, key_only: bool = False) -> list[MetricRow]:
        """Primary metric first, then the guardrails, then the rest by name (`key_only`: the first two)."""
        names = [self.primary_metric, *(m for m in self.guardrail_metrics if m != self.primary_metric)]
        if not key_only:
            others = set(self.candidate_metrics) | set(self.production_registered_metrics)
            others |= set(self.production_metrics_on_window)
            names += sorted(others - set(names))
        rows = []
        for name in names:
            new = self.candidate_metrics.get(name)
            old = self.production_metrics_on_window.get(name, self.production_registered_metrics.get(name))
            rows.append(MetricRow(
                name=name, role=self._role(name), candidate=new,
                production=self.production_registered_metrics.get(name),
                production_on_window=self.production_metrics_on_window.get(name),
                difference=None if new is None or old is None else metric_difference(new, old),
            ))
        return rows


def compare_for_promotion(
    candidate: ModelInfo, production: ModelInfo | None, policy: PromotionPolicy, decision: Decision,
    *, production_on_window: dict[str, float] | None = None, data_version: str | None = None,
) -> PromotionComparison:
    """The comparison behind `decision` (the policy's verdict on `candidate` against `production`)."""
    extra = candidate.dataset_info.model_extra if candidate.dataset_info else None
    segments = (extra or {}).get("segments")
    return PromotionComparison(
        candidate_id=candidate.model_id,
        production_id=production.model_id if production else None,
        candidate_metrics=candidate.performance_metrics,
        production_metrics_on_window=production_on_window or {},
        production_registered_metrics=production.performance_metrics if production else {},
        segments={str(k): [str(x) for x in v] for k, v in segments.items()} if isinstance(segments, dict) else {},
        data_version=data_version,
        decision=decision.action,
        reasons=decision.reasons,
        primary_metric=policy.primary_metric,
        guardrail_metrics=[rail.metric for rail in policy.guardrails],
    )
