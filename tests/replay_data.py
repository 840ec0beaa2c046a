"""CI-size data and configuration for the rolling-replay tests: 30 instruments, 8 windows of 10 days."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

BASELINE = Path(__file__).resolve().parents[1] / "examples" / "benchmarks_dynamic" / "baseline" / "workflow_config_linear_Alpha158.yaml"
INSTRUMENTS = 30
DATA_START, DATA_END = "2019-07-01", "2020-12-31"
STEP, HORIZON = 10, 5
WINDOWS = 8


def synth_replay_data(out: Path) -> Path:
    """The synthetic Qlib data directory of the replay tests."""
    from tasks.core.data.synthetic import synthesize

    return synthesize(out, instruments=INSTRUMENTS, start=DATA_START, end=DATA_END, seed=21).out


def replay_config(data: Path, *, estimator: str = "ridge") -> dict[str, Any]:
    """The upstream rolling baseline with dates scaled to the CI data (test span = 8 windows of 20 days)."""
    raw: dict[str, Any] = yaml.safe_load(BASELINE.read_text())
    config = copy.deepcopy(raw)
    config["qlib_init"]["provider_uri"] = str(data)
    handler = config["task"]["dataset"]["kwargs"]["handler"]["kwargs"]
    handler.update(start_time="2019-10-08", end_time="2020-10-09", fit_start_time="2019-10-08",
                   fit_end_time="2020-04-30", instruments="csi300")
    config["task"]["dataset"]["kwargs"]["segments"] = {
        "train": ["2019-10-08", "2020-04-30"], "valid": ["2020-05-01", "2020-06-30"],
        "test": ["2020-07-01", "2020-10-09"],
    }
    config["task"]["model"]["kwargs"]["estimator"] = estimator
    config["port_analysis_config"]["strategy"]["kwargs"].update(topk=10, n_drop=2)
    config["port_analysis_config"]["backtest"].update(start_time="2020-07-01", end_time="2020-10-09")
    config["task"]["record"][2]["kwargs"]["config"] = config["port_analysis_config"]
    return config


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
