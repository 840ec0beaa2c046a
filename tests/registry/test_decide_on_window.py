"""The policy on the candidate's window: production's re-scored metrics decide; an unscored production never auto-promotes."""

from __future__ import annotations

import pytest

from registry.policy import Action, PromotionPolicy, decide_on_window, decide_promotion

WINDOW = "2022-05-05..2022-06-30"


def test_production_weak_on_the_window_loses_even_though_its_registered_metrics_were_better() -> None:
    candidate, registered, on_window = {"ic_mean": 0.04}, {"ic_mean": 0.06}, {"ic_mean": -0.03}
    policy = PromotionPolicy()
    assert decide_promotion(candidate, registered, policy).action == Action.KEEP
    decision = decide_on_window(candidate, on_window, policy, window=WINDOW)
    assert decision.action == Action.PROMOTE
    assert WINDOW in decision.reasons[0] and "same metric code" in decision.reasons[0]
    assert any("vs production -0.03" in reason for reason in decision.reasons)


@pytest.mark.parametrize(("approval", "action"), [("manual", Action.NEEDS_APPROVAL), ("always", Action.NEEDS_APPROVAL), ("auto", Action.KEEP)])
def test_a_production_that_cannot_be_scored_is_never_replaced_automatically(approval: str, action: Action) -> None:
    decision = decide_on_window(
        {"ic_mean": 0.9}, None, PromotionPolicy(approval=approval), window=WINDOW,  # type: ignore[arg-type]
        production_unscored="CorruptedArtifactError: checksum mismatch",
    )
    assert decision.action == action
    assert "could not be scored on the candidate's window 2022-05-05..2022-06-30" in decision.reasons[0]
    assert "CorruptedArtifactError" in decision.reasons[0]


def test_without_production_the_first_candidate_is_decided_as_before() -> None:
    assert decide_on_window({"ic_mean": 0.01}, None, PromotionPolicy(), window=WINDOW).action == Action.PROMOTE
