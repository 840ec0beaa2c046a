"""One training process of the shared-cache test: build the dataset through the cache, fit, save raw features.

Usage: feature_cache_worker.py DATA_DIR lightgbm|linear HANDLER.json OUT.pkl (settings from QMP_* variables).
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
from pathlib import Path

from qlib.model.base import Model
from qlib.utils import init_instance_by_config

from registry.settings import load_settings
from tasks.core.qlib.session import qlib_cache_enabled
from tasks.core.qlib.training import prepare_dataset
from tasks.core.qlib.workflow_config import load_workflow_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
YAML = {"lightgbm": "workflow_config_lightgbm_Alpha158.yaml", "linear": "workflow_config_linear_Alpha158.yaml"}
SEGMENTS = {"train": ["2021-03-01", "2021-06-30"], "valid": ["2021-07-01", "2021-08-15"],
            "test": ["2021-08-16", "2021-10-15"]}


def main(data: str, model: str, handler: str, out: str) -> None:
    raw = copy.deepcopy(load_workflow_config(EXAMPLES / YAML[model], provider_uri=data).raw)
    raw["task"]["dataset"]["kwargs"]["handler"] = json.loads(Path(handler).read_text())
    raw["task"]["dataset"]["kwargs"]["segments"] = SEGMENTS
    if model == "lightgbm":  # what is under test is the features; a short fit keeps the test short
        raw["task"]["model"]["kwargs"]["num_boost_round"] = 20
    cfg = load_workflow_config(raw, provider_uri=data)
    dataset = prepare_dataset(cfg, load_settings())
    # Fitted outside a recorder run: the features are under test, not MLflow's bookkeeping.
    fitted = init_instance_by_config(cfg.model, accept_types=Model)
    fitted.fit(dataset)
    with open(out, "wb") as handle:
        pickle.dump({"cache": qlib_cache_enabled(), "model": type(fitted).__name__,
                     "raw": dataset.handler.fetch(col_set="__raw", data_key="raw")}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:5])
