"""`qmp monitor` and `qmp monitor set` through the real entry point (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from registry import ModelMetadata, ModelRegistry, ScoredDay
from registry.drift import DEFAULT_RULE
from registry.live import LiveScore
from tests.cli.test_qmp_models import qmp

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(30)]


@pytest.fixture
def monitored(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    model_id = registry.register_model({"w": 1}, ModelMetadata(model_name="lgbm",
                                                               performance_metrics={"ic_mean": 0.05, "ic_std": 0.1}))
    registry.set_production_model(model_id)
    registry.write_predictions("lgbm", [ScoredDay(model_id, d, [("A", 1.0)]) for d in DAYS], data_version="v1")
    registry.write_live_metrics("lgbm", [
        LiveScore(model_id=model_id, trading_date=d, ic=-0.02, rank_ic=-0.01, instruments=40, signal_return=0.001,
                  top_k=50) for d in DAYS[:28]
    ], data_version="v1")
    return registry


def test_monitor_shows_live_ic_against_expectation_signal_return_and_the_verdict(
    monitored: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = qmp("monitor", "lgbm", "--days", "25", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    assert "lgbm: lgbm_v1.0.0" in out and "drifted" in out and "0.0500 ± 0.1000 (ic_mean/ic_std)" in out
    assert "mean live IC, last 20 days" in out and "-0.0200" in out and "0.0250" in out  # 25 x 0.001
    code, out, _ = qmp("monitor", "--json", capsys=capsys, monkeypatch=monkeypatch)
    (report,) = json.loads(out)
    assert code == 0 and report["live_days_total"] == 28 and report["drift"]["verdict"] == "drifted"
    assert report["mean_ic_short"] == pytest.approx(-0.02) and report["cumulative_signal_return"] == pytest.approx(0.028)


def test_monitor_set_stores_the_rule_and_nonsense_is_one_line_that_changes_nothing(
    monitored: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = qmp("monitor", "set", "lgbm", "--window", "40", "--z", "3", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "over 40 days more than 3 standard errors" in out
    assert monitored.drift_rule("lgbm").window == 40
    for args in (["--window", "1"], ["--z", "-2"], ["--min-days", "50"]):
        code, _, err = qmp("monitor", "set", "lgbm", *args, capsys=capsys, monkeypatch=monkeypatch)
        assert code != 0 and len(err.strip().splitlines()) == 1, err
    assert monitored.drift_rule("lgbm") == DEFAULT_RULE.model_copy(update={"window": 40, "z": 3.0})
    qmp("monitor", "set", "lgbm", "--min-days", "30", capsys=capsys, monkeypatch=monkeypatch)
    code, out, _ = qmp("monitor", "lgbm", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "too few live days" in out and "28 live day(s) with an IC, the rule needs 30" in out


def test_monitor_of_an_unknown_name_or_one_without_predictions_is_one_line(
    monitored: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = monitored.register_model({"w": 2}, ModelMetadata(model_name="fresh", performance_metrics={}))
    monitored.set_production_model(model_id)
    for args, expected in ((["nobody"], "no production model for 'nobody'"),
                           (["fresh"], "no stored predictions for 'fresh' yet"),
                           (["set", "nobody", "--z", "1"], "'nobody' not found"),
                           (["lgbm", "--z", "1"], "qmp monitor set NAME"),
                           (["--backtest"], "usage: qmp monitor NAME --backtest"),
                           (["lgbm", "--from", "2024-01-02"], "usage: qmp monitor NAME --backtest"),
                           (["lgbm", "--backtest", "--from", "soon"], "--from must be a date YYYY-MM-DD"),
                           (["fresh", "--backtest"], "no stored predictions for 'fresh' yet")):
        code, _, err = qmp("monitor", *args, capsys=capsys, monkeypatch=monkeypatch)
        assert code != 0 and expected in " ".join(err.split()), err
        assert len(err.strip().splitlines()) == 1, err


def test_compare_warns_in_one_line_when_the_test_windows_differ(
    registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)

    def register(test: list[str], days: float) -> str:
        return registry.register_model({"w": days}, ModelMetadata(
            model_name="cmp", performance_metrics={"ic_mean": 0.05, "test_days": days},
            dataset_info={"segments": {"test": test}}))

    a = register(["2017-01-02", "2018-09-28"], 159)
    b = register(["2017-01-02", "2018-09-28"], 159)
    c = register(["2019-01-02", "2019-06-28"], 120)
    code, _, err = qmp("models", "compare", a, b, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "warning" not in err
    code, out, err = qmp("models", "compare", a, c, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and len(err.strip().splitlines()) == 1 and "different test windows" in err
    assert "2017-01-02..2018-09-28, 159 days" in err and "2019-01-02..2019-06-28, 120 days" in err
    assert "Metrics:" in out
