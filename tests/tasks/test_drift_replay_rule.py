"""The drift replay asks the registry's drift rule, each day, only about the live days whose label is known then."""

from __future__ import annotations

from registry.drift import DEFAULT_RULE, Expectation, judge_drift, make_rule
from tasks.core.replay.drift_plan import first_drift

EXPECTED = Expectation(mean=0.2, std=0.1, source="daily_ic")


def test_the_rule_fires_once_the_labels_of_enough_bad_days_are_known_not_before() -> None:
    healthy, flipped = [0.2] * 30, [-0.2] * 30
    horizon = 2
    fired = first_drift("m", "m_v1", healthy + flipped, horizon, EXPECTED, DEFAULT_RULE)
    assert fired is not None
    day, verdict = fired
    assert verdict.drifted and verdict.live_days == DEFAULT_RULE.window
    known = (healthy + flipped)[: day - horizon + 1]
    assert judge_drift("m", "m_v1", known, EXPECTED, DEFAULT_RULE).drifted
    assert not judge_drift("m", "m_v1", known[:-1], EXPECTED, DEFAULT_RULE).drifted  # the day before: not yet
    assert 30 + horizon <= day <= 30 + horizon + DEFAULT_RULE.window


def test_a_model_that_keeps_its_promise_is_never_retrained_and_none_is_no_day() -> None:
    assert first_drift("m", "m_v1", [0.2, None] * 40, 5, EXPECTED, DEFAULT_RULE) is None
    # The verdict waits for min_days known ICs: with a label 5 days ahead, not before day min_days + 5 - 1.
    rule = make_rule(window=5, min_days=3)
    fired = first_drift("m", "m_v1", [-1.0] * 20, 5, EXPECTED, rule)
    assert fired is not None and fired[0] == rule.min_days + 5 - 1
