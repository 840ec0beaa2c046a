"""`qmp signals` and `qmp predict`'s argument checks through the real entry point (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from registry import ModelMetadata, ModelRegistry, ScoredDay
from tests.cli.test_qmp_models import qmp

D1, D2 = date(2024, 3, 4), date(2024, 3, 5)


@pytest.fixture
def signals_registry(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    model_id = registry.register_model({"w": 1}, ModelMetadata(model_name="lgbm", performance_metrics={"ic_mean": 0.1}))
    registry.write_predictions("lgbm", [
        ScoredDay(model_id, D1, [("SH600000", 0.5), ("SH600001", -0.1)]),
        ScoredDay(model_id, D2, [(f"SH6000{i:02d}", i / 100) for i in range(60)]),
    ], data_version="2024-03-05/abc")
    return registry


def test_signals_default_to_the_last_day_top_50_as_a_table(
    signals_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = qmp("signals", "lgbm", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert "lgbm on 2024-03-05" in out and "SH600059" in out and "SH600010" in out and "SH600009" not in out


def test_signals_of_a_day_as_csv_json_and_parquet(
    signals_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    code, out, _ = qmp("signals", "lgbm", "--date", "2024-03-04", "--format", "csv", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and out.splitlines()[:3] == [
        "rank,instrument,score,trading_date,model_id,data_version",
        "1,SH600000,0.5,2024-03-04,lgbm_v1.0.0,2024-03-05/abc",
        "2,SH600001,-0.1,2024-03-04,lgbm_v1.0.0,2024-03-05/abc",
    ]
    code, out, _ = qmp("signals", "lgbm", "--top", "3", "--format", "json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and [r["instrument"] for r in json.loads(out)] == ["SH600059", "SH600058", "SH600057"]
    target = tmp_path / "signal.parquet"
    code, _, _ = qmp("signals", "lgbm", "--format", "parquet", "--output", str(target), capsys=capsys,
                     monkeypatch=monkeypatch)
    frame = pd.read_parquet(target)
    assert code == 0 and len(frame) == 50 and frame["score"].is_monotonic_decreasing


def test_signals_without_stored_predictions_is_one_error_line(
    signals_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = qmp("signals", "lgbm", "--date", "2024-03-06", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and err.strip() == "error: no stored predictions for 'lgbm' on 2024-03-06"


def test_predict_recompute_needs_both_ends(
    signals_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = qmp("predict", "--recompute", "--from", "2024-03-04", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "--recompute needs both --from and --to" in err
