"""Evaluation: our flat metrics equal what Qlib's own SigAnaRecord and PortAnaRecord produce."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from qlib.utils import fill_placeholder, init_instance_by_config
from qlib.workflow import R

from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC
from registry.settings import Settings
from tasks.core.qlib.evaluation import METRIC_NAMES, evaluate
from tasks.core.qlib.session import QLIB_LOCK, ensure_experiment

from .conftest import Trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]

# Our name -> the metric Qlib's records log for the same quantity.
QLIB_NAMES = {
    "ic_mean": "IC",
    "icir": "ICIR",
    "rank_ic": "Rank IC",
    "rank_icir": "Rank ICIR",
    "annualized_return": "1day.excess_return_with_cost.annualized_return",
    "information_ratio": "1day.excess_return_with_cost.information_ratio",
    "max_drawdown": "1day.excess_return_with_cost.max_drawdown",
    "annualized_return_without_cost": "1day.excess_return_without_cost.annualized_return",
    "information_ratio_without_cost": "1day.excess_return_without_cost.information_ratio",
    "max_drawdown_without_cost": "1day.excess_return_without_cost.max_drawdown",
}


def _qlib_record_metrics(trained: Trained, settings: Settings) -> dict[str, float]:
    """Run the YAML's records (SignalRecord, SigAnaRecord, PortAnaRecord) the way qrun does."""
    model, dataset = trained.result.model, trained.dataset
    records = fill_placeholder(copy.deepcopy(trained.cfg.records), {"<MODEL>": model, "<DATASET>": dataset})
    with QLIB_LOCK:
        ensure_experiment("qlib-own-records", settings)
        with R.start(experiment_name="qlib-own-records"):
            recorder = R.get_recorder()
            for record in records:
                init_instance_by_config(
                    record,
                    recorder=recorder,
                    default_module="qlib.workflow.record_temp",
                    try_kwargs={"model": model, "dataset": dataset},
                ).generate()
        # Qlib logs metrics asynchronously; they are all flushed once the run has ended.
        return recorder.list_metrics()


@pytest.mark.parametrize("name", ["lightgbm", "linear"])
def test_metrics_equal_qlibs_own_records(
    name: str, request: pytest.FixtureRequest, qlib_settings: Settings, qlib_on_data: Path
) -> None:
    """Qlib's records backtest on Qlib's global data provider: ``qlib_on_data`` points it at this session's
    data (an earlier test may have left it on another directory)."""
    trained: Trained = request.getfixturevalue(name)
    theirs = _qlib_record_metrics(trained, qlib_settings)
    for ours, qlib_name in QLIB_NAMES.items():
        assert trained.metrics[ours] == pytest.approx(theirs[qlib_name], abs=1e-9), ours
    assert trained.metrics["sharpe_ratio"] == trained.metrics["information_ratio"]
    assert trained.metrics["ic"] == trained.metrics["ic_mean"]


def test_metrics_are_one_flat_dict_of_documented_floats(lightgbm: Trained) -> None:
    assert list(lightgbm.metrics) == list(METRIC_NAMES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in lightgbm.metrics.values())
    assert 0 <= lightgbm.metrics["win_rate"] <= 1
    assert lightgbm.metrics["max_drawdown"] <= 0
    assert lightgbm.metrics["test_days"] > 100


def test_a_model_with_alpha_beats_the_benchmark_and_the_shuffled_one(
    lightgbm: Trained, shuffled: Trained
) -> None:
    assert lightgbm.metrics["annualized_return"] > 0
    assert lightgbm.metrics["information_ratio"] > shuffled.metrics["information_ratio"]


def test_without_port_analysis_config_documented_defaults_apply(
    lightgbm: Trained, qlib_settings: Settings
) -> None:
    bare = lightgbm.cfg.model_copy(update={"port_analysis": None})
    metrics = evaluate(lightgbm.result.model, lightgbm.dataset, bare, settings=qlib_settings).metrics
    assert metrics["ic_mean"] == lightgbm.metrics["ic_mean"]
    # Qlib's default top 50 holds the whole 40-stock universe, so the portfolio is the index minus costs.
    assert abs(metrics["annualized_return_without_cost"]) < abs(
        lightgbm.metrics["annualized_return_without_cost"]
    )


def test_backtest_end_past_the_data_is_clamped_to_the_second_to_last_day(
    lightgbm: Trained, qlib_settings: Settings
) -> None:
    late = copy.deepcopy(lightgbm.cfg.port_analysis)
    assert late is not None
    late["backtest"]["end_time"] = "2030-01-01"
    cfg = lightgbm.cfg.model_copy(update={"port_analysis": late})
    metrics = evaluate(lightgbm.result.model, lightgbm.dataset, cfg, settings=qlib_settings).metrics
    assert math.isfinite(metrics["annualized_return"])


def test_evaluation_on_the_valid_segment_uses_that_segment(
    lightgbm: Trained, qlib_settings: Settings
) -> None:
    metrics = evaluate(
        lightgbm.result.model, lightgbm.dataset, lightgbm.cfg, settings=qlib_settings, segment="valid"
    ).metrics
    assert metrics["test_days"] < lightgbm.metrics["test_days"]
    assert metrics["ic_mean"] != lightgbm.metrics["ic_mean"]


def test_evaluation_series_are_the_ones_its_metrics_summarise(lightgbm: Trained, qlib_settings: Settings) -> None:
    result = evaluate(lightgbm.result.model, lightgbm.dataset, lightgbm.cfg, settings=qlib_settings)
    assert result.metrics == pytest.approx(lightgbm.metrics, nan_ok=True)
    ic = result.series[DAILY_IC]
    defined = [v for v in ic.values if v is not None]
    assert len(ic.dates) == result.metrics["test_days"]
    assert sum(defined) / len(defined) == pytest.approx(result.metrics["ic_mean"], rel=1e-9)
    excess = result.series[CUMULATIVE_EXCESS_RETURN]
    # Qlib's risk_analysis annualises the mean daily excess return over 238 trading days.
    assert excess.values[-1] / len(excess.values) * 238 == pytest.approx(result.metrics["annualized_return"], rel=1e-9)
