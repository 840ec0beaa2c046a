"""Planted regime change: production trained before the alpha flips, daily predictions continued across the
flip; the drift rule fires within `window + h` trading days of it, and the flow records it exactly once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from flows.predict import PredictResult, predict
from registry import ModelRegistry
from registry.drift import DEFAULT_RULE, expectation_of, judge_drift
from registry.statuses import EventKind
from tasks.core.data.synthetic import append_synthetic, synthesize
from tests.flows.test_rolling_retrain import rolled, rolling_pipeline  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
FLIP = "2022-03-31"  # the last day of the planted alpha; afterwards it points the other way


def test_a_flipped_alpha_is_detected_within_window_plus_h_days_and_recorded_once(
    rolling_pipeline: tuple[ModelRegistry, Path],  # noqa: F811
) -> None:
    registry, data = rolling_pipeline
    synthesize(data, instruments=30, start="2021-01-01", end=FLIP, seed=7, alpha_strength=3.0, overwrite=True)
    production = rolled("regime_drift")
    assert production.decision is not None and production.status == "production"
    first = predict(model_name="regime_drift", from_date=date(2022, 2, 1), return_state=True)
    assert first.is_completed(), first.message
    append_synthetic(data, "2022-06-30", seed=8, alpha_strength=-3.0)

    result: PredictResult = predict(model_name="regime_drift", return_state=True).result()
    again: PredictResult = predict(model_name="regime_drift", return_state=True).result()

    (live,) = result.monitoring
    assert live.drift is not None and live.drift.drifted and live.new_drift_episode
    assert not again.monitoring[0].new_drift_episode
    assert [e.event for e in registry.history("regime_drift")].count(EventKind.DRIFT_DETECTED) == 1
    # When would the daily run have seen it? Day D's live IC is known h = 2 trading days after D.
    days = registry.live_metrics("regime_drift")
    info = registry.get_model_info(production.model_id)  # type: ignore[arg-type]
    expectation = expectation_of(registry.get_evaluation_series(info.model_id), info.performance_metrics)
    fired = next(i for i in range(len(days)) if judge_drift(
        "regime_drift", info.model_id, [d.ic for d in days[:i + 1]], expectation, DEFAULT_RULE).drifted)
    before = [d for d in days if d.trading_date <= date.fromisoformat(FLIP)]
    assert not any(judge_drift("regime_drift", info.model_id, [d.ic for d in before[:i + 1]], expectation,
                               DEFAULT_RULE).drifted for i in range(len(before)))
    calendar = [d.trading_date for d in days]
    after_flip = calendar.index(days[fired].trading_date) - calendar.index(pd.Timestamp(FLIP).date())
    assert 0 < after_flip + 2 <= DEFAULT_RULE.window + 2, (days[fired].trading_date, after_flip)
