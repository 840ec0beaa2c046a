"""One training process of the shared-cache test: build the dataset through the cache, fit, save raw features.

Usage: feature_cache_worker.py DATA_DIR lightgbm|linear OUT.pkl (settings from QMP_* variables).
"""

from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path

from tasks.core.qlib_env import qlib_cache_enabled
from tasks.core.training import prepare_dataset, train_model
from tasks.core.workflow_config import load_workflow_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
YAML = {"lightgbm": "workflow_config_lightgbm_Alpha158.yaml", "linear": "workflow_config_linear_Alpha158.yaml"}
SEGMENTS = {"train": ["2021-03-01", "2021-06-30"], "valid": ["2021-07-01", "2021-08-15"],
            "test": ["2021-08-16", "2021-10-15"]}


def main(data: str, model: str, out: str) -> None:
    raw = copy.deepcopy(load_workflow_config(EXAMPLES / YAML[model], provider_uri=data).raw)
    handler = raw["task"]["dataset"]["kwargs"]["handler"]
    handler["kwargs"].update(start_time="2021-03-01", end_time=None, fit_start_time="2021-03-01",
                             fit_end_time="2021-06-30")
    raw["task"]["dataset"]["kwargs"]["segments"] = SEGMENTS
    cfg = load_workflow_config(raw, provider_uri=data)
    dataset = prepare_dataset(cfg)
    result = train_model(cfg, dataset, f"feature-cache-{model}")
    with open(out, "wb") as handle:
        pickle.dump({"cache": qlib_cache_enabled(), "model": result.model_type,
                     "raw": dataset.handler.fetch(col_set="__raw", data_key="raw")}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:4])
