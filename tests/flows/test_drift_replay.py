"""`qmp rolling --trigger drift` on planted-regime data: the drift replay retrains soon after the alpha flips, less
often than the fixed-step replay of the same period, and both are evaluated on the same days.

One replay pair for the module (LinearModel, 30 instruments, step 10, label look-ahead 2 days).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from flows.drift_rolling import drift_rolling
from flows.retrain import WorkflowSource
from registry import ModelFilter, ModelRegistry, ModelStatus
from tasks.core.data.qlib_binary import read_calendar
from tasks.core.data.synthetic import append_synthetic, synthesize
from tasks.core.replay.drift_plan import DriftReplaySpec
from tasks.core.replay.drift_result import DriftComparison
from tasks.core.replay.plan import ReplaySpec
from tests.replay_data import DATA_START, INSTRUMENTS, replay_config

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
FLIP = "2020-09-30"  # the last day of the planted alpha; afterwards it points the other way
PERIOD_END = "2020-12-15"
SPEC = ReplaySpec(step=10, horizon=1)  # label Ref($close, -2) / Ref($close, -1) - 1: known 2 trading days later
DRIFT = DriftReplaySpec()  # the default rule: 20 live days, 2 standard errors, 10 days before a verdict


@pytest.fixture(scope="module")
def regime_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drift-replay-data") / "qlib"
    synthesize(out, instruments=INSTRUMENTS, start=DATA_START, end=FLIP, seed=21, alpha_strength=3.0)
    append_synthetic(out, "2020-12-31", seed=22, alpha_strength=-3.0)
    return out


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drift-replay-registry")


@pytest.fixture(scope="module")
def comparison(regime_data: Path, registry_dir: Path) -> DriftComparison:
    return replay(regime_data, registry_dir)


def replay(data: Path, registry_dir: Path) -> DriftComparison:
    """The drift replay (and the fixed-step one beside it) of the replay tests' workflow, up to PERIOD_END."""
    config = replay_config(data)
    config["task"]["dataset"]["kwargs"]["segments"]["test"][1] = PERIOD_END
    config["task"]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"] = PERIOD_END
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QMP_REGISTRY_DIR", str(registry_dir))
        patch.delenv("QMP_DATABASE_URL", raising=False)
        patch.delenv("QMP_PROVIDER_URI", raising=False)
        return drift_rolling(model_name="regime", workflow=WorkflowSource(config=config), replay=SPEC, drift=DRIFT)


def position(calendar: pd.DatetimeIndex, day: str) -> int:
    return int(calendar.get_loc(pd.Timestamp(day)))


def test_the_drift_replay_retrains_within_window_plus_h_days_of_the_flip_and_less_often_than_every_step(
    comparison: DriftComparison, regime_data: Path
) -> None:
    drift, fixed = comparison.drift, comparison.fixed
    calendar = read_calendar(regime_data)
    anchors = [position(calendar, w.live[0]) - 1 for w in drift.windows[1:]]  # the days the rule fired
    after_flip = [a - position(calendar, FLIP) for a in anchors if a > position(calendar, FLIP)]
    assert after_flip and after_flip[0] <= DRIFT.rule.window + drift.horizon, (anchors, after_flip)
    assert drift.horizon == 2
    assert 1 <= drift.retrains < len(fixed.windows) - 1
    for before, window in zip(drift.windows, drift.windows[1:], strict=False):
        assert before.drift_reason is not None and "below expectation" in before.drift_reason
        # The scheduled retrain's window on the day the rule fired: its test segment ends h days before it.
        assert position(calendar, window.segments["test"][1]) == position(calendar, before.live[1]) - drift.horizon
        assert position(calendar, window.live[0]) == position(calendar, before.live[1]) + 1


def test_both_replays_cover_the_same_period_and_report_their_combined_ic_and_backtest(
    comparison: DriftComparison, registry_dir: Path
) -> None:
    drift, fixed = comparison.drift, comparison.fixed
    assert (drift.windows[0].live[0], drift.windows[-1].live[1]) == (fixed.windows[0].test[0], fixed.windows[-1].test[1])
    assert drift.combined["test_days"] == fixed.combined["test_days"]
    for combined in (drift.combined, fixed.combined):
        assert all(math.isfinite(combined[k]) for k in ("ic_mean", "rank_ic", "annualized_return", "max_drawdown"))
    rows = comparison.rows()
    assert [r["retrains"] for r in rows] == [drift.retrains, len(fixed.windows) - 1]
    assert rows[0]["ic"] == pytest.approx(drift.combined["ic_mean"], abs=1e-6)
    registry = ModelRegistry(registry_dir)
    versions = registry.list_models(ModelFilter(model_name=drift.replay_name, order_by="version", descending=False))
    assert [v.model_id for v in versions] == [w.model_id for w in drift.windows]
    assert {v.status for v in versions} == {ModelStatus.REGISTERED}
    assert drift.record_path and json.loads(Path(drift.record_path).read_text())["replay_id"] == drift.replay_id


def test_a_rerun_reuses_every_window_and_gives_the_same_result(
    comparison: DriftComparison, regime_data: Path, registry_dir: Path
) -> None:
    again = replay(regime_data, registry_dir)
    assert again.drift.replay_id == comparison.drift.replay_id and again.drift.trained_windows == 0
    assert again.fixed.trained_windows == 0
    assert [w.live for w in again.drift.windows] == [w.live for w in comparison.drift.windows]
    assert again.drift.combined["ic_mean"] == pytest.approx(comparison.drift.combined["ic_mean"], abs=1e-9)

