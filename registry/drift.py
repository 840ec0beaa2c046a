"""The drift rule as a pure function: a production model's live IC against what its evaluation promised.

Over the last ``window`` live days of the model (days without an IC left out), the model has drifted when its
mean live IC is below its expectation by more than ``z`` standard errors (the expectation's daily dispersion
over the square root of the days), or below the absolute ``floor`` when one is set. Before ``min_days`` live
days there is no verdict. The expectation is the mean and standard deviation of the version's evaluation
series ``daily_ic``; a version registered without one uses its ``ic_mean`` and ``ic_std``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from registry.errors import InvalidArgumentError
from registry.series import DAILY_IC, EvaluationSeries


class DriftRule(BaseModel):
    """A name's drift rule settings (stored in the registry; ``qmp monitor set NAME``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(20, ge=2, le=2_000, description="live days the mean IC is taken over")
    z: float = Field(2.0, gt=0, le=20, description="standard errors below the expectation that count as drift")
    floor: float | None = Field(None, ge=-1, le=1, description="mean live IC below this is drift, whatever the expectation")
    min_days: int = Field(10, ge=1, le=2_000, description="live days needed before any verdict")

    @model_validator(mode="after")
    def _min_days_inside_window(self) -> DriftRule:
        if self.min_days > self.window:
            raise InvalidArgumentError(f"min_days {self.min_days} is larger than the window of {self.window} days")
        return self

    def describe(self) -> str:
        """The rule in one line."""
        floor = f" or below {self.floor:g}" if self.floor is not None else ""
        return (f"mean live IC over {self.window} days more than {self.z:g} standard errors below expectation"
                f"{floor} (from {self.min_days} days)")


DEFAULT_RULE = DriftRule.model_validate({})


def make_rule(base: DriftRule | None = None, **changes: object) -> DriftRule:
    """``base`` (default: the default rule) with ``changes`` (None values ignored); one-line error when out of range."""
    values = {**(base or DEFAULT_RULE).model_dump(), **{k: v for k, v in changes.items() if v is not None}}
    try:
        return DriftRule.model_validate(values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "rule"
        raise InvalidArgumentError(f"drift rule {where}={values.get(where)!r}: {problem['msg']}") from None


def stored_rule(stored: Mapping[str, Any] | None) -> DriftRule:
    """A name's drift rule from the settings stored for it (none stored: the default rule)."""
    return make_rule(**stored) if stored else DEFAULT_RULE


class Expectation(BaseModel):
    """What the version's evaluation promised: the daily IC's mean and standard deviation."""

    model_config = ConfigDict(frozen=True)

    mean: float
    std: float
    source: str  # "daily_ic" or "ic_mean/ic_std"


class Verdict(StrEnum):
    DRIFTED = "drifted"
    HEALTHY = "healthy"
    TOO_FEW_DAYS = "too few live days"
    NO_EXPECTATION = "no expectation"


class DriftResult(BaseModel):
    """One name's drift verdict and the numbers it rests on (drawn by the CLI, the page and the artifact)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_name: str
    model_id: str
    rule: DriftRule
    expectation: Expectation | None
    live_days: int  # days with an IC in the window
    live_mean_ic: float | None
    threshold: float | None  # the mean live IC below which the model has drifted
    verdict: Verdict
    reasons: list[str]

    @property
    def drifted(self) -> bool:
        return self.verdict == Verdict.DRIFTED


def expectation_of(series: Mapping[str, EvaluationSeries], metrics: Mapping[str, float]) -> Expectation | None:
    """The expectation from the evaluation's ``daily_ic`` (two values at least), else ``ic_mean``/``ic_std``."""
    daily = [v for v in series[DAILY_IC].values if v is not None] if DAILY_IC in series else []
    if len(daily) >= 2:
        return Expectation(mean=statistics.fmean(daily), std=statistics.stdev(daily), source=DAILY_IC)
    mean, std = metrics.get("ic_mean"), metrics.get("ic_std")
    if mean is not None and std is not None and math.isfinite(mean) and math.isfinite(std):
        return Expectation(mean=mean, std=std, source="ic_mean/ic_std")
    return None


def judge_drift(
    model_name: str, model_id: str, live_ics: Sequence[float | None], expectation: Expectation | None, rule: DriftRule
) -> DriftResult:
    """The verdict on the model's live ICs, oldest first (only the last ``rule.window`` count)."""
    window = [ic for ic in live_ics[-rule.window:] if ic is not None]
    mean = statistics.fmean(window) if window else None

    def result(verdict: Verdict, threshold: float | None, reasons: list[str]) -> DriftResult:
        return DriftResult(model_name=model_name, model_id=model_id, rule=rule, expectation=expectation,
                           live_days=len(window), live_mean_ic=mean, threshold=threshold, verdict=verdict,
                           reasons=reasons)

    if len(window) < rule.min_days or mean is None:
        return result(Verdict.TOO_FEW_DAYS, None, [f"{len(window)} live day(s) with an IC, the rule needs {rule.min_days}"])
    limits = _limits(expectation, rule, len(window))
    if not limits:
        return result(Verdict.NO_EXPECTATION, None,
                      ["the version has no daily_ic series nor ic_mean/ic_std, and no floor is set"])
    threshold = max(limits.values())
    reasons = [f"mean live IC {mean:.4f} over {len(window)} days is below {name} {limit:.4f}"
               for name, limit in limits.items() if mean < limit]
    if reasons:
        return result(Verdict.DRIFTED, threshold, reasons)
    return result(Verdict.HEALTHY, threshold,
                  [f"mean live IC {mean:.4f} over {len(window)} days is at or above {threshold:.4f}"])


def _limits(expectation: Expectation | None, rule: DriftRule, days: int) -> dict[str, float]:
    """The thresholds the rule sets, by what they are called in a reason."""
    limits: dict[str, float] = {}
    if expectation is not None:
        error = expectation.std / math.sqrt(days)
        limits[f"expectation {expectation.mean:.4f} - {rule.z:g} x standard error {error:.4f} ="] = (
            expectation.mean - rule.z * error)
    if rule.floor is not None:
        limits["the floor"] = rule.floor
    return limits
