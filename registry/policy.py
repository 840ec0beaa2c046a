"""The promotion policy as a pure function: candidate vs production metrics -> decision with reasons.

Every comparison of metric values goes through one tie rule (:func:`tie_tolerance`): two values closer than
numerical noise are equal, and a tie is never "better".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Two scores of one model differ by rounding alone when they take different scoring paths: Qlib's
# LinearModel predicts in float32 and its output moves with the batch size (float32 rounding amplified by
# large coefficients; DESIGN.md has the measurements), while the float64 path is batch-independent. A metric
# computed from those predictions inherits that relative noise: about a hundred float32 steps covers it.
RELATIVE_TOLERANCE = 1e-5
# Near zero a relative tolerance vanishes, but a correlation-like metric (a constant model's IC) keeps the
# noise of unit-scale float32 predictions: the floor is float32's resolution at 1 (epsilon 1.19e-7), rounded.
ABSOLUTE_TOLERANCE = 1e-7


def tie_tolerance(a: float, b: float) -> float:
    """How far apart two values of one metric may be from rounding alone: relative to the larger magnitude,
    with an absolute floor near zero. Values this close tie; a tie is never better."""
    return max(RELATIVE_TOLERANCE * max(abs(a), abs(b)), ABSOLUTE_TOLERANCE)


def is_tie(a: float, b: float) -> bool:
    """Whether `a` and `b` are equal within numerical noise (:func:`tie_tolerance`)."""
    return abs(a - b) <= tie_tolerance(a, b)


def metric_difference(new: float, old: float) -> float:
    """``new - old``, or 0.0 when the two tie: what comparisons show, so that noise is not read as a change."""
    return 0.0 if is_tie(new, old) else new - old


def beats(value: float, current: float, *, higher_is_better: bool) -> bool:
    """Whether `value` is better than `current` by more than numerical noise."""
    gain = (value - current) if higher_is_better else (current - value)
    return gain > tie_tolerance(value, current)


def _exceeds(amount: float, limit: float, noise: float) -> bool:
    """Whether `amount` is above `limit` by more than `noise` (equal within noise is not above)."""
    return amount - limit > noise


class Action(StrEnum):
    PROMOTE = "promote"
    NEEDS_APPROVAL = "needs_approval"
    KEEP = "keep"


class Guardrail(BaseModel):
    """A bound on a secondary metric: a floor/ceiling, and/or how much worse than production it may be."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="Metric name, e.g. max_drawdown or icir.")
    higher_is_better: bool = Field(True, description="Direction of the metric (max_drawdown: higher, i.e. less negative, is better).")
    min_value: float | None = Field(None, description="The candidate's value may not be below this.")
    max_value: float | None = Field(None, description="The candidate's value may not be above this.")
    max_worsening: float | None = Field(
        None, ge=0, description="How much worse than production the candidate may be (absolute, in the metric's units)."
    )


class PromotionPolicy(BaseModel):
    """When a newly trained model replaces production."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: str = Field("ic_mean", title="Primary metric", description="Metric that decides which model is better.")
    higher_is_better: bool = Field(True, title="Higher is better")
    min_improvement: float = Field(
        0.0, ge=0, title="Minimum absolute improvement", description="The candidate must beat production by at least this."
    )
    min_relative_improvement: float = Field(
        0.0, ge=0, title="Minimum relative improvement", description="Fraction of |production value|, e.g. 0.05 for 5%."
    )
    guardrails: list[Guardrail] = Field(default_factory=list, title="Guardrails on other metrics")
    approval: Literal["auto", "manual", "always"] = Field(
        "auto", title="Approval mode",
        description="auto: promote when better; manual: pause for a person only when the candidate is better "
                    "(otherwise keep it without asking); always: pause for a person on every candidate.",
    )


class Decision(BaseModel):
    """What the policy decided and why, in plain words."""

    action: Action
    reasons: list[str]

    @property
    def better(self) -> bool:
        return self.action != Action.KEEP


def _number(metrics: Mapping[str, float] | None, name: str) -> float | None:
    value = (metrics or {}).get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check_guardrail(rail: Guardrail, candidate: Mapping[str, float], production: Mapping[str, float] | None) -> str | None:
    """The reason the candidate fails `rail`, or None when it passes."""
    value = _number(candidate, rail.metric)
    if value is None:
        return f"guardrail on {rail.metric}: the candidate has no finite {rail.metric}"
    if rail.min_value is not None and _exceeds(rail.min_value, value, tie_tolerance(value, rail.min_value)):
        return f"guardrail on {rail.metric}: {value:.6g} is below the floor {rail.min_value:.6g}"
    if rail.max_value is not None and _exceeds(value, rail.max_value, tie_tolerance(value, rail.max_value)):
        return f"guardrail on {rail.metric}: {value:.6g} is above the ceiling {rail.max_value:.6g}"
    current = _number(production, rail.metric)
    if rail.max_worsening is not None and current is not None:
        worsening = (current - value) if rail.higher_is_better else (value - current)
        if _exceeds(worsening, rail.max_worsening, tie_tolerance(value, current)):
            return (
                f"guardrail on {rail.metric}: {value:.6g} is worse than production's {current:.6g} "
                f"by {worsening:.6g}, more than the allowed {rail.max_worsening:.6g}"
            )
    return None


def decide_promotion(
    candidate: Mapping[str, float], production: Mapping[str, float] | None, policy: PromotionPolicy
) -> Decision:
    """Promote, ask for approval, or keep — never promoting on a missing or non-finite metric."""
    metric = policy.primary_metric
    value = _number(candidate, metric)
    if value is None:
        return Decision(action=Action.KEEP, reasons=[f"the candidate has no finite {metric}; it is never promoted on it"])
    decision = _decide_on_metrics(value, candidate, production, policy)
    if decision.action == Action.KEEP and policy.approval == "always":
        return Decision(action=Action.NEEDS_APPROVAL,
                        reasons=[*decision.reasons, "approval mode is always: a person decides on every candidate"])
    return decision


def _decide_on_metrics(
    value: float, candidate: Mapping[str, float], production: Mapping[str, float] | None, policy: PromotionPolicy
) -> Decision:
    metric = policy.primary_metric
    reasons: list[str] = []
    current = _number(production, metric) if production is not None else None
    if production is None:
        reasons.append(f"there is no production model; the candidate's {metric} is {value:.6g}")
    elif current is None:
        reasons.append(f"the production model has no finite {metric}; the candidate's is {value:.6g}")
    else:
        better, verdict = _compare_primary(value, current, policy)
        if not better:
            return Decision(action=Action.KEEP, reasons=[verdict])
        reasons.append(verdict)
    failures = [r for rail in policy.guardrails if (r := _check_guardrail(rail, candidate, production)) is not None]
    if failures:
        return Decision(action=Action.KEEP, reasons=reasons + failures)
    if policy.guardrails:
        reasons.append("all guardrails pass: " + ", ".join(rail.metric for rail in policy.guardrails))
    if policy.approval != "auto":
        return Decision(action=Action.NEEDS_APPROVAL,
                        reasons=[*reasons, f"approval mode is {policy.approval}: a person must approve"])
    return Decision(action=Action.PROMOTE, reasons=[*reasons, "approval mode is auto: promoting"])


def _compare_primary(value: float, current: float, policy: PromotionPolicy) -> tuple[bool, str]:
    """Whether the candidate's primary metric beats production's by the policy's margin, and why, in words."""
    gain = (value - current) if policy.higher_is_better else (current - value)
    noise = tie_tolerance(value, current)
    needed = max(policy.min_improvement, policy.min_relative_improvement * abs(current))
    why = f"{policy.primary_metric} {value:.6g} vs production {current:.6g}"
    if abs(gain) <= noise:
        return False, f"not better: {why} is a tie within numerical noise (|gain| {abs(gain):.3g} <= tolerance {noise:.3g})"
    if not beats(value, current, higher_is_better=policy.higher_is_better):
        return False, f"not better: {why} ({'higher' if policy.higher_is_better else 'lower'} is better)"
    if _exceeds(needed, gain, noise):
        return False, f"improvement too small: {why}, gain {gain:.6g} < required {needed:.6g}"
    return True, f"better: {why} (gain {gain:.6g} >= required {needed:.6g})"


def decide_on_window(
    candidate: Mapping[str, float],
    production_on_window: Mapping[str, float] | None,
    policy: PromotionPolicy,
    *,
    window: str,
    production_unscored: str | None = None,
    note: str | None = None,
) -> Decision:
    """``decide_promotion`` with production's metrics measured on the candidate's ``window``.

    When a production model exists but could not be scored there (``production_unscored`` says why),
    the comparison is impossible: never an automatic promotion — "needs approval" in manual mode,
    "keep" in auto mode (a person is asked in manual and always modes). ``note`` says how the window was
    restricted to the days production never saw (``candidate`` then holds the candidate's metrics there).
    """
    if production_unscored is not None:
        why = f"the production model could not be scored on the candidate's window {window}: {production_unscored}"
        if policy.approval in ("manual", "always"):
            return Decision(action=Action.NEEDS_APPROVAL, reasons=[why, "a person must decide without the comparison"])
        return Decision(action=Action.KEEP, reasons=[why, "approval mode is auto: never promoted without a comparison"])
    decision = decide_promotion(candidate, production_on_window, policy)
    if production_on_window is None:
        return decision
    compared = note or f"both models scored on the candidate's window {window} with the same metric code"
    return Decision(action=decision.action, reasons=[compared, *decision.reasons])
