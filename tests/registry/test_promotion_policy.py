"""The promotion policy on its own: a pure function of two metric dicts and a policy."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.policy import (
    ABSOLUTE_TOLERANCE,
    RELATIVE_TOLERANCE,
    Action,
    Guardrail,
    PromotionPolicy,
    decide_on_window,
    decide_promotion,
    is_tie,
    metric_difference,
    tie_tolerance,
)

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


# -- the tie rule --------------------------------------------------------------------------------------------

NOISE_SETTINGS = settings(max_examples=300, deadline=None)
metric_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
policies = st.builds(
    PromotionPolicy,
    higher_is_better=st.booleans(),
    approval=st.sampled_from(["auto", "manual"]),
    min_improvement=st.sampled_from([0.0, 1e-9, 0.01]),
    min_relative_improvement=st.sampled_from([0.0, 1e-9, 0.05]),
)


def _within_noise(production: float, relative: float, absolute: float) -> float:
    """`production` moved by at most half the tie tolerance (relative and absolute parts), as rounding would."""
    return production * (1 + relative * RELATIVE_TOLERANCE / 2) + absolute * ABSOLUTE_TOLERANCE / 2


@NOISE_SETTINGS
@given(production=metric_values, relative=st.floats(-1, 1), absolute=st.floats(-1, 1), policy=policies)
def test_a_candidate_equal_to_production_within_numerical_noise_is_never_promoted(
    production: float, relative: float, absolute: float, policy: PromotionPolicy
) -> None:
    candidate = _within_noise(production, relative, absolute)
    decision = decide_promotion({"ic_mean": candidate}, {"ic_mean": production}, policy)
    assert decision.action == Action.KEEP and not decision.better
    assert "tie within numerical noise" in decision.reasons[0]
    check = decide_on_window({"ic_mean": candidate}, {"ic_mean": production}, policy, window="2022-01-04..2022-06-30")
    assert check.action == Action.KEEP


@NOISE_SETTINGS
@given(production=metric_values, steps=st.floats(2, 1e3), higher_is_better=st.booleans())
def test_a_candidate_better_by_more_than_the_noise_is_still_promoted(
    production: float, steps: float, higher_is_better: bool
) -> None:
    margin = steps * tie_tolerance(production, production)
    candidate = production + margin if higher_is_better else production - margin
    decision = decide_promotion({"ic_mean": candidate}, {"ic_mean": production},
                                PromotionPolicy(higher_is_better=higher_is_better))
    assert decision.action == Action.PROMOTE and decision.reasons[0].startswith("better:")


def test_the_tie_message_names_both_values_the_gain_and_the_tolerance() -> None:
    # The stale-approval check's numbers when production was rolled back to the candidate's own artifact.
    decision = decide_promotion({"ic_mean": 0.07398636818}, {"ic_mean": 0.07398635382}, AUTO)
    assert decision.action == Action.KEEP
    assert decision.reasons == [
        "not better: ic_mean 0.0739864 vs production 0.0739864 is a tie within numerical noise "
        "(|gain| 1.44e-08 <= tolerance 7.4e-07)"
    ]


def test_metrics_near_zero_tie_within_the_absolute_floor() -> None:
    constant_models = decide_promotion({"ic_mean": 3e-19}, {"ic_mean": -2e-19}, AUTO)
    assert constant_models.action == Action.KEEP and "tie within numerical noise" in constant_models.reasons[0]
    assert decide_promotion({"ic_mean": 1e-6}, {"ic_mean": 0.0}, AUTO).action == Action.PROMOTE


def test_thresholds_and_guardrails_met_within_noise_pass() -> None:
    # 0.06 - 0.05 is 0.009999999999999995 in binary floating point: it meets a 0.01 minimum.
    assert decide_promotion({"ic_mean": 0.06}, {"ic_mean": 0.05}, PromotionPolicy(min_improvement=0.01)).action \
        == Action.PROMOTE
    policy = PromotionPolicy(guardrails=[
        Guardrail(metric="max_drawdown", min_value=-0.15),
        Guardrail(metric="turnover", higher_is_better=False, max_value=0.3, max_worsening=0.1),
    ])
    production = {"ic_mean": 0.04, "max_drawdown": -0.1, "turnover": 0.2}
    at_the_bounds = {"ic_mean": 0.05, "max_drawdown": -0.15 * (1 + 1e-9), "turnover": 0.1 + 0.2}
    decision = decide_promotion(at_the_bounds, production, policy)
    assert decision.action == Action.PROMOTE, decision.reasons
    beyond = decide_promotion({"ic_mean": 0.05, "max_drawdown": -0.1501, "turnover": 0.3001}, production, policy)
    assert any("below the floor -0.15" in r for r in beyond.reasons)
    assert any("above the ceiling 0.3" in r for r in beyond.reasons)
    turnover_limit = PromotionPolicy(guardrails=[Guardrail(metric="turnover", higher_is_better=False, max_worsening=0.1)])
    worse = decide_promotion({"ic_mean": 0.05, "turnover": 0.3001}, production, turnover_limit)
    assert worse.action == Action.KEEP and "more than the allowed 0.1" in worse.reasons[-1]


def test_shown_differences_are_zero_for_a_tie() -> None:
    assert metric_difference(0.07398636818, 0.07398635382) == 0.0
    assert metric_difference(0.05, 0.04) == pytest.approx(0.01)
    assert is_tie(-0.15, -0.15 * (1 + 1e-9)) and not is_tie(-0.15, -0.1501)
