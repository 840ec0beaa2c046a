"""`qmp models compare A B --same-window`: both models scored on the newest days neither of them saw."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from qlib.data import D

from registry import ModelRegistry
from registry.settings import Settings
from tasks.core.qlib.evaluation import signal_metrics
from tasks.core.qlib.same_window import compare_on_same_window
from tasks.core.qlib.scoring import score_registered_model
from tests.cli.test_qmp_models import qmp
from tests.qlib.conftest import Trained, register_trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]
LABEL = "Ref($close, -2)/Ref($close, -1) - 1"


def test_both_models_are_scored_on_the_same_newest_days_after_both_trained(
    linear: Trained, lightgbm: Trained, registry: ModelRegistry, qlib_settings: Settings, qlib_data: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = register_trained(registry, linear, "same_window")  # trained and validated up to 2022-04-30
    second = register_trained(registry, lightgbm, "same_window", valid_end="2022-04-20")

    result = compare_on_same_window(first, second, settings=qlib_settings, registry=registry, days=20,
                                    provider_uri=qlib_data)

    calendar = D.calendar(freq="day")
    assert result.days == 20 and result.window[1] == calendar[-3].date()  # the newest day with a label
    assert result.window[0] > pd.Timestamp("2022-05-04").date()
    scores = score_registered_model(first, result.window[0], result.window[1], registry=registry,
                                    settings=qlib_settings, provider_uri=qlib_data)
    label = D.features(sorted(set(scores.index.get_level_values(1))), [LABEL], start_time=result.window[0],
                       end_time=result.window[1]).iloc[:, 0].swaplevel().reindex(scores.index)
    expected, _ = signal_metrics(scores.to_frame("score"), label.to_frame("label"))
    assert result.metrics[first]["ic_mean"] == pytest.approx(expected["ic_mean"], abs=1e-12)

    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_MLFLOW_URI", qlib_settings.resolved_mlflow_uri())
    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    code, out, err = qmp("models", "compare", first, second, "--same-window", "--days", "20", "--json",
                         capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["metrics"][first]["ic_mean"] == pytest.approx(result.metrics[first]["ic_mean"], abs=1e-12)
    assert shown["window"] == [d.isoformat() for d in result.window]
