"""The drift rule as a pure function, and the live metrics and drift settings in the registry (SQLite and
PostgreSQL)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from registry import ModelMetadata, ModelRegistry, ScoredDay
from registry.drift import DEFAULT_RULE, Expectation, Verdict, expectation_of, judge_drift, make_rule
from registry.errors import InvalidArgumentError, ModelNotFoundError
from registry.live import LiveScore
from registry.series import DAILY_IC, EvaluationSeries

EXPECTED = Expectation(mean=0.05, std=0.10, source=DAILY_IC)


def test_a_mean_far_below_expectation_is_drift_and_one_within_the_standard_error_is_not() -> None:
    rule = make_rule(window=20, z=2, min_days=10)  # threshold 0.05 - 2 * 0.10 / sqrt(20) = 0.00528
    drifted = judge_drift("m", "m_v1", [0.0] * 20, EXPECTED, rule)
    healthy = judge_drift("m", "m_v1", [0.01] * 20, EXPECTED, rule)
    assert drifted.verdict == Verdict.DRIFTED and drifted.threshold == pytest.approx(0.05 - 0.2 / math.sqrt(20))
    assert healthy.verdict == Verdict.HEALTHY and "at or above" in healthy.reasons[0]


def test_only_the_last_window_days_count_and_too_few_days_give_no_verdict() -> None:
    rule = make_rule(window=5, min_days=3)
    assert judge_drift("m", "m_v1", [-0.5] * 50 + [0.05] * 5, EXPECTED, rule).verdict == Verdict.HEALTHY
    few = judge_drift("m", "m_v1", [None, None, -0.5, -0.5], EXPECTED, rule)
    assert few.verdict == Verdict.TOO_FEW_DAYS and few.live_days == 2 and "needs 3" in few.reasons[0]


def test_the_floor_alone_can_call_drift_and_without_expectation_or_floor_there_is_no_verdict() -> None:
    floored = judge_drift("m", "m_v1", [0.04] * 20, EXPECTED, make_rule(floor=0.045))
    assert floored.verdict == Verdict.DRIFTED and "below the floor" in floored.reasons[0]
    assert judge_drift("m", "m_v1", [0.04] * 20, None, DEFAULT_RULE).verdict == Verdict.NO_EXPECTATION
    assert judge_drift("m", "m_v1", [0.04] * 20, None, make_rule(floor=0.05)).drifted


def test_the_expectation_comes_from_the_daily_ic_series_else_the_registered_metrics() -> None:
    series = {DAILY_IC: EvaluationSeries(dates=[date(2024, 1, d) for d in (2, 3, 4)], values=[0.1, None, 0.3])}
    from_series = expectation_of(series, {"ic_mean": 9.0, "ic_std": 9.0})
    assert from_series is not None and from_series.source == DAILY_IC
    assert (from_series.mean, from_series.std) == (pytest.approx(0.2), pytest.approx(math.sqrt(0.02)))
    assert expectation_of({}, {"ic_mean": 0.04, "ic_std": 0.1}) == Expectation(mean=0.04, std=0.1,
                                                                                 source="ic_mean/ic_std")
    assert expectation_of({}, {"ic_mean": 0.04}) is None


@pytest.mark.parametrize("changes", [{"window": 0}, {"z": -1}, {"z": "abc"}, {"min_days": 30, "window": 20},
                                     {"floor": 3}])
def test_a_rule_that_makes_no_sense_is_one_clear_error(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        make_rule(**changes)
    assert "\n" not in str(caught.value) and any(key in str(caught.value) for key in changes)


def _live(model_id: str, day: date, ic: float) -> LiveScore:
    return LiveScore(model_id=model_id, trading_date=day, ic=ic, rank_ic=ic, instruments=30, signal_return=ic / 10,
                     top_k=50)


def test_live_metrics_are_written_once_per_day_and_a_recompute_replaces_its_range(registry: ModelRegistry) -> None:
    model_id = registry.register_model({"w": 1}, ModelMetadata(model_name="live", performance_metrics={"ic_mean": 0.1}))
    days = [date(2024, 3, 4) + timedelta(days=i) for i in range(5)]
    registry.write_predictions("live", [ScoredDay(model_id, d, [("A", 1.0), ("B", 0.5)]) for d in days],
                               data_version="v1")
    first = registry.write_live_metrics("live", [_live(model_id, d, 0.1) for d in days[:3]], data_version="v1")
    again = registry.write_live_metrics("live", [_live(model_id, d, 0.9) for d in days[:4]], data_version="v2")
    assert first.written_days == days[:3] and again.written_days == [days[3]]
    assert [d.ic for d in registry.live_metrics("live")] == [0.1, 0.1, 0.1, 0.9]

    write = registry.write_predictions("live", [ScoredDay(model_id, d, [("A", 2.0)]) for d in days[1:3]],
                                       data_version="v3", recompute=(days[1], days[2]),
                                       live=[_live(model_id, days[1], -0.2)])
    assert write.live_replaced_days == days[1:3] and write.live_written_days == [days[1]]
    stored = {d.trading_date: d for d in registry.live_metrics("live")}
    assert sorted(stored) == [days[0], days[1], days[3]]
    assert stored[days[1]].ic == -0.2 and stored[days[1]].data_version == "v3"


def test_a_names_drift_rule_is_stored_and_an_unknown_name_is_refused(registry: ModelRegistry) -> None:
    registry.register_model({"w": 1}, ModelMetadata(model_name="ruled", performance_metrics={"ic_mean": 0.1}))
    assert registry.drift_rule("ruled") == DEFAULT_RULE
    registry.set_drift_rule("ruled", make_rule(window=30, z=1.5, floor=0.0))
    assert registry.drift_rule("ruled") == make_rule(window=30, z=1.5, floor=0.0)
    with pytest.raises(ModelNotFoundError, match="nobody"):
        registry.set_drift_rule("nobody", DEFAULT_RULE)
    with pytest.raises(ModelNotFoundError, match="nobody"):
        registry.write_live_metrics("nobody", [_live("x", date(2024, 1, 2), 0.1)], data_version="v")
