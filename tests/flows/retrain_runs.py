"""Retrain runs as the flow tests make them: the two example configurations sized for the small synthetic
data, and `retrain` called the way `qmp retrain` calls it. Shared by the flow, UI and settings tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flows.retrain import RetrainResult, WorkflowSource, retrain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WEAK = EXAMPLES / "workflow_config_linear_Alpha158.yaml"


def _strong_config() -> dict[str, Any]:
    """The LightGBM example with regularisation sized for 24 stocks (the upstream values, tuned for
    300 stocks, can leave a tree-less model with constant predictions on so little data)."""
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "workflow_config_lightgbm_Alpha158.yaml").read_text())
    config["task"]["model"]["kwargs"].update(lambda_l1=1.0, lambda_l2=1.0, num_leaves=31, learning_rate=0.05)
    return config


STRONG = _strong_config()


def run_retrain(name: str, config: Path | dict[str, Any], **options: Any) -> RetrainResult:
    """One run of the retrain flow on `config` (a path or a parsed YAML), with the flow's other options."""
    source = WorkflowSource(config=config) if isinstance(config, dict) else WorkflowSource(config_path=str(config))
    return retrain(model_name=name, workflow=source, **options)
