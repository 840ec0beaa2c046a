"""Workflow configurations: qrun YAMLs load with anchors, overrides, thread caps and placeholders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks.core.qlib.workflow_config import (
    WorkflowConfigError,
    cap_threads,
    fill_placeholders,
    load_workflow_config,
)
from tasks.core.third_party import CONSOLE_LEVEL_VARIABLE, LOG_FILE_VARIABLE

from .conftest import LIGHTGBM_YAML, LINEAR_YAML


def test_lightgbm_yaml_resolves_anchors_and_exposes_what_the_registry_keeps(tmp_path: Path) -> None:
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=tmp_path)
    assert cfg.model_type == "LGBModel"
    assert cfg.hyperparameters["num_leaves"] == 210
    info = cfg.dataset_info
    assert info.instruments == "csi300"
    assert (info.start_time, info.end_time) == ("2021-01-01", "2022-12-31")
    assert info.handler == "Alpha158"
    assert info.label == ["Ref($close, -2)/Ref($close, -1) - 1"]
    assert info.segments["test"] == ["2022-05-01", "2022-12-15"]
    assert info.benchmark == "SH000300"
    assert cfg.port_analysis is not None
    assert cfg.port_analysis["strategy"]["kwargs"]["signal"] == ["<MODEL>", "<DATASET>"]
    assert [r["class"] for r in cfg.records] == ["SignalRecord", "SigAnaRecord", "PortAnaRecord"]


def test_explicit_provider_uri_beats_the_setting_which_beats_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMP_PROVIDER_URI", raising=False)
    assert load_workflow_config(LIGHTGBM_YAML).provider_uri == "~/.qlib/qlib_data/cn_data"
    monkeypatch.setenv("QMP_PROVIDER_URI", str(tmp_path / "from_env"))
    assert load_workflow_config(LIGHTGBM_YAML).provider_uri == str(tmp_path / "from_env")
    explicit = load_workflow_config(LIGHTGBM_YAML, provider_uri=tmp_path / "explicit")
    assert explicit.provider_uri == str(tmp_path / "explicit")
    assert explicit.raw["qlib_init"]["provider_uri"] == str(tmp_path / "explicit")


def test_thread_counts_above_the_cores_are_capped(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=tmp_path)
    assert cfg.hyperparameters["num_threads"] == min(20, cores)
    assert cap_threads({"kwargs": {"n_jobs": 64, "nthread": 1, "other": 64}}, 4) == {
        "kwargs": {"n_jobs": 4, "nthread": 1, "other": 64}
    }


def test_linear_yaml_keeps_its_processors_and_label(tmp_path: Path) -> None:
    cfg = load_workflow_config(LINEAR_YAML, provider_uri=tmp_path)
    handler_kwargs = cfg.dataset["kwargs"]["handler"]["kwargs"]
    assert [p["class"] for p in handler_kwargs["infer_processors"]] == ["RobustZScoreNorm", "Fillna"]
    assert cfg.dataset_info.label == ["Ref($close, -2) / Ref($close, -1) - 1"]
    assert cfg.model_type == "LinearModel"


def test_inline_dict_is_copied_not_mutated(tmp_path: Path) -> None:
    raw = yaml.safe_load(LIGHTGBM_YAML.read_text())
    cfg = load_workflow_config(raw, provider_uri=tmp_path)
    assert raw["qlib_init"]["provider_uri"] == "~/.qlib/qlib_data/cn_data"
    assert cfg.source == "<inline config>"


def test_base_config_path_is_merged_underneath_like_qrun(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(LIGHTGBM_YAML.read_text())
    (tmp_path / "child.yaml").write_text(
        "BASE_CONFIG_PATH: base.yaml\nexperiment_name: child\ntask:\n  model:\n    kwargs: {num_leaves: 8}\n"
    )
    cfg = load_workflow_config(tmp_path / "child.yaml", provider_uri=tmp_path)
    assert cfg.hyperparameters["num_leaves"] == 8
    assert cfg.hyperparameters["learning_rate"] == 0.2
    assert cfg.model_type == "LGBModel"
    assert cfg.experiment_name == "child"


def test_environment_variables_are_rendered_into_the_yaml_like_qrun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = LIGHTGBM_YAML.read_text().replace(
        "market: &market csi300", "market: &market {{ QMP_TEST_MARKET }}"
    )
    (tmp_path / "templated.yaml").write_text(text)
    monkeypatch.setenv("QMP_TEST_MARKET", "all")
    cfg = load_workflow_config(tmp_path / "templated.yaml", provider_uri=tmp_path)
    assert cfg.dataset_info.instruments == "all"


def test_missing_sections_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkflowConfigError, match="missing 'task' section"):
        load_workflow_config({"qlib_init": {"provider_uri": "x"}})
    with pytest.raises(
        WorkflowConfigError, match=r"'task.model' needs a \{class, module_path, kwargs\} spec"
    ):
        load_workflow_config(
            {"qlib_init": {}, "task": {"dataset": {"class": "DatasetH"}}}, provider_uri=tmp_path
        )
    with pytest.raises(WorkflowConfigError, match=r"nope\.yaml: cannot read"):
        load_workflow_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    with pytest.raises(WorkflowConfigError, match=r"bad\.yaml: invalid YAML"):
        load_workflow_config(tmp_path / "bad.yaml")


def test_placeholders_are_filled_like_qrun_and_the_config_stays_intact(tmp_path: Path) -> None:
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=tmp_path)
    model, dataset = object(), object()
    filled = fill_placeholders(cfg.port_analysis, MODEL=model, DATASET=dataset)
    assert filled["strategy"]["kwargs"]["signal"] == [model, dataset]
    assert cfg.port_analysis is not None
    assert cfg.port_analysis["strategy"]["kwargs"]["signal"] == ["<MODEL>", "<DATASET>"]
    assert (
        fill_placeholders(
            {
                "start": "<dataset.kwargs.segments.test.0>",
                "dataset": {"kwargs": {"segments": {"test": ["2022-05-01"]}}},
            }
        )["start"]
        == "2022-05-01"
    )


@pytest.mark.slow  # imports Qlib in a fresh interpreter
def test_loading_a_workflow_leaves_logging_alone(tmp_path: Path) -> None:
    # Qlib's qrun module reconfigures logging when first imported; inside a Prefect run that stalled the retrain
    # flow for 5 s (Prefect's log handler flushed under logging's lock). It must happen at import, not at load.
    script = f"""
import logging.config
import tasks.core.qlib.workflow_config as workflow_config
calls = []
logging.config.dictConfig = calls.append
workflow_config.load_workflow_config({str(LIGHTGBM_YAML)!r}, provider_uri={str(tmp_path)!r})
assert calls == [], calls
"""
    root = Path(__file__).resolve().parents[2]
    # A command's quiet output (its log file, its console level) reaches processes through the environment; an
    # earlier in-process CLI test may have set it: this interpreter starts as a plain one would.
    plain = {k: v for k, v in os.environ.items() if k not in (CONSOLE_LEVEL_VARIABLE, LOG_FILE_VARIABLE)}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**plain, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow  # imports Qlib in a fresh interpreter
def test_initialising_qlib_leaves_logging_alone(tmp_path: Path) -> None:
    # qlib.init reconfigures logging too (inside the prepare step, so inside a Prefect run): the same 5 s stall.
    # Qlib's logging is set up when tasks.core.qlib.session is imported; init_qlib must not set it up again, and must keep
    # the logging config in Qlib's config for the worker processes that set their logging up from it.
    script = f"""
import logging, logging.config
from qlib.config import C
from registry.settings import Settings
import tasks.core.qlib.session as qlib_env
calls = []
logging.config.dictConfig = calls.append
qlib_env.init_qlib({str(tmp_path / "qlib_data")!r}, settings=Settings(registry_dir={str(tmp_path / "registry")!r}))
assert calls == [], calls
assert C.provider_uri, "qlib.init did not run"
assert C.logging_config == qlib_env.QLIB_LOGGING and C.logging_config["loggers"]["qlib"]["handlers"] == ["console"]
assert logging.getLogger("qlib").handlers, "Qlib's console handler is gone"
"""
    root = Path(__file__).resolve().parents[2]
    plain = {k: v for k, v in os.environ.items() if k not in (CONSOLE_LEVEL_VARIABLE, LOG_FILE_VARIABLE)}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**plain, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
