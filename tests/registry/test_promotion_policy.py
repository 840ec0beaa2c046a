"""The promotion policy on its own: a pure function of two metric dicts and a policy."""

from __future__ import annotations

import math

import pytest

from registry.policy import Action, Guardrail, PromotionPolicy, decide_promotion

AUTO = PromotionPolicy()
MANUAL = PromotionPolicy(approval="manual")


def test_a_first_model_with_a_finite_metric_is_promoted_when_there_is_no_production() -> None:
    decision = decide_promotion({"ic_mean": 0.03}, None, AUTO)
    assert decision.action == Action.PROMOTE
    assert "no production model" in decision.reasons[0]


def test_a_better_candidate_is_promoted_and_a_worse_one_kept() -> None:
    assert decide_promotion({"ic_mean": 0.05}, {"ic_mean": 0.04}, AUTO).action == Action.PROMOTE
    kept = decide_promotion({"ic_mean": 0.03}, {"ic_mean": 0.04}, AUTO)
    assert kept.action == Action.KEEP and "not better" in kept.reasons[0]


def test_an_equal_candidate_is_not_better() -> None:
    assert decide_promotion({"ic_mean": 0.04}, {"ic_mean": 0.04}, AUTO).action == Action.KEEP


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None, "0.1x"])
def test_never_promotes_on_a_missing_or_non_finite_primary_metric(value: object) -> None:
    candidate = {} if value is None else {"ic_mean": value}
    for production in (None, {"ic_mean": 0.01}):
        decision = decide_promotion(candidate, production, AUTO)  # type: ignore[arg-type]
        assert decision.action == Action.KEEP
        assert "no finite ic_mean" in decision.reasons[0]


def test_a_production_model_without_the_metric_is_beaten_by_any_finite_candidate() -> None:
    decision = decide_promotion({"ic_mean": 0.01}, {"ic_mean": math.nan}, AUTO)
    assert decision.action == Action.PROMOTE
    assert "production model has no finite ic_mean" in decision.reasons[0]


def test_lower_is_better_metrics_compare_the_other_way() -> None:
    policy = PromotionPolicy(primary_metric="mse", higher_is_better=False)
    assert decide_promotion({"mse": 0.9}, {"mse": 1.0}, policy).action == Action.PROMOTE
    assert decide_promotion({"mse": 1.1}, {"mse": 1.0}, policy).action == Action.KEEP


def test_minimum_improvements_absolute_and_relative() -> None:
    absolute = PromotionPolicy(min_improvement=0.01)
    assert decide_promotion({"ic_mean": 0.045}, {"ic_mean": 0.04}, absolute).action == Action.KEEP
    assert decide_promotion({"ic_mean": 0.051}, {"ic_mean": 0.04}, absolute).action == Action.PROMOTE
    relative = PromotionPolicy(min_relative_improvement=0.10)
    small = decide_promotion({"ic_mean": 0.043}, {"ic_mean": 0.04}, relative)
    assert small.action == Action.KEEP and "improvement too small" in small.reasons[0]
    assert decide_promotion({"ic_mean": 0.045}, {"ic_mean": 0.04}, relative).action == Action.PROMOTE


def test_guardrails_block_a_better_candidate_and_say_which_one() -> None:
    policy = PromotionPolicy(guardrails=[
        Guardrail(metric="max_drawdown", max_worsening=0.05),
        Guardrail(metric="icir", min_value=0.3),
    ])
    production = {"ic_mean": 0.04, "max_drawdown": -0.10, "icir": 0.5}
    worse_drawdown = decide_promotion({"ic_mean": 0.05, "max_drawdown": -0.20, "icir": 0.5}, production, policy)
    assert worse_drawdown.action == Action.KEEP
    assert any("max_drawdown" in r and "more than the allowed 0.05" in r for r in worse_drawdown.reasons)
    low_icir = decide_promotion({"ic_mean": 0.05, "max_drawdown": -0.12, "icir": 0.2}, production, policy)
    assert low_icir.action == Action.KEEP and any("below the floor 0.3" in r for r in low_icir.reasons)
    missing = decide_promotion({"ic_mean": 0.05, "icir": 0.5}, production, policy)
    assert missing.action == Action.KEEP and any("no finite max_drawdown" in r for r in missing.reasons)
    passing = decide_promotion({"ic_mean": 0.05, "max_drawdown": -0.12, "icir": 0.4}, production, policy)
    assert passing.action == Action.PROMOTE and any("all guardrails pass" in r for r in passing.reasons)


def test_manual_mode_asks_for_approval_instead_of_promoting() -> None:
    decision = decide_promotion({"ic_mean": 0.05}, {"ic_mean": 0.04}, MANUAL)
    assert decision.action == Action.NEEDS_APPROVAL
    assert decision.reasons[-1] == "approval mode is manual: a person must approve"
    assert decide_promotion({"ic_mean": 0.03}, {"ic_mean": 0.04}, MANUAL).action == Action.KEEP


def test_the_policy_refuses_unknown_fields_and_negative_thresholds() -> None:
    with pytest.raises(ValueError):
        PromotionPolicy(min_improvement=-1)
    with pytest.raises(ValueError):
        PromotionPolicy.model_validate({"primary_metric": "ic_mean", "aproval": "manual"})


def test_manual_asks_only_for_a_better_candidate_and_always_asks_for_every_one() -> None:
    always = PromotionPolicy(approval="always", guardrails=[Guardrail(metric="max_drawdown", min_value=-0.15)])
    assert decide_promotion({"ic_mean": 0.03}, {"ic_mean": 0.04}, MANUAL).action == Action.KEEP
    assert decide_promotion({"ic_mean": 0.05}, {"ic_mean": 0.04}, MANUAL).action == Action.NEEDS_APPROVAL
    worse = decide_promotion({"ic_mean": 0.03, "max_drawdown": -0.1}, {"ic_mean": 0.04}, always)
    assert worse.action == Action.NEEDS_APPROVAL
    assert worse.reasons[0].startswith("not better") and "always" in worse.reasons[-1]
    failing = decide_promotion({"ic_mean": 0.05, "max_drawdown": -0.3}, {"ic_mean": 0.04}, always)
    assert failing.action == Action.NEEDS_APPROVAL and any("below the floor" in r for r in failing.reasons)
    better = decide_promotion({"ic_mean": 0.05, "max_drawdown": -0.1}, {"ic_mean": 0.04}, always)
    assert better.action == Action.NEEDS_APPROVAL and "approval mode is always" in better.reasons[-1]
    # A candidate without a finite primary metric is never offered for promotion, whatever the mode.
    assert decide_promotion({"ic_mean": math.nan}, None, always).action == Action.KEEP
