"""The paper backtest equals Qlib's backtest run by hand on the same stored signals, and is cached."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from qlib.backtest import backtest
from qlib.contrib.evaluate import risk_analysis
from qlib.utils import get_date_by_shift

from registry import ModelRegistry
from registry.settings import Settings, load_settings
from tasks.core import lifecycle
from tasks.core.predictions.backtest import paper_backtest, stored_signals
from tasks.core.predictions.daily import predict_name
from tasks.core.qlib.evaluation import DEFAULT_EXECUTOR
from tasks.core.qlib.session import init_qlib
from tests.qlib.conftest import Trained, env_for

pytestmark = [pytest.mark.qlib, pytest.mark.slow]
SPAN = (date(2022, 10, 10), date(2022, 11, 30))


@pytest.fixture
def registry(qlib_settings: Settings, qlib_data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    env_for(qlib_settings, monkeypatch)
    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    init_qlib(qlib_data, settings=qlib_settings)
    yield lifecycle.open_registry(load_settings())


def test_the_paper_backtest_equals_qlibs_backtest_on_the_stored_signals_and_is_cached(
    linear: Trained, registry: ModelRegistry
) -> None:
    name = f"paper_{uuid.uuid4().hex[:8]}"
    metadata = lifecycle.metadata_for(name, linear.cfg, linear.metrics, experiment_name=linear.result.experiment_name,
                                      recorder_id=linear.result.recorder_id)
    info = lifecycle.register_trained(linear.result.model, metadata, load_settings(), flow_run_id=None)
    lifecycle.promote(info.model_id, load_settings(), actor="test", reason="test")
    predict_name(name, start=SPAN[0], end=SPAN[1], registry=registry, settings=load_settings())

    result = paper_backtest(registry, name, settings=load_settings())

    signals = stored_signals(registry, name, None, None)
    config = linear.cfg.port_analysis
    assert config is not None
    strategy = {**config["strategy"], "kwargs": {**config["strategy"]["kwargs"], "signal": signals}}
    settings = {**config["backtest"], "start_time": signals.index.get_level_values(0).min(),
                "end_time": get_date_by_shift(signals.index.get_level_values(0).max(), 1)}
    portfolio, _ = backtest(executor=DEFAULT_EXECUTOR, strategy=strategy, **settings)
    report, _ = portfolio["1day"]
    by_hand = risk_analysis(report["return"] - report["bench"] - report["cost"], freq="1day")["risk"]
    assert (result.first, result.last) == SPAN and not result.cached
    assert result.metrics["annualized_return"] == pytest.approx(by_hand["annualized_return"], abs=1e-12)
    assert result.metrics["max_drawdown"] == pytest.approx(by_hand["max_drawdown"], abs=1e-12)
    again = paper_backtest(registry, name, settings=load_settings())
    assert again.cached and again.metrics == result.metrics
