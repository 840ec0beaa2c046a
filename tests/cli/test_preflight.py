"""No-ops and bad input answered before a flow run or a Prefect server starts: PREFECT_API_URL names a port
nothing listens on, so reaching Prefect at all would be an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.cli.preflight import LOCAL_SERVER_HINT
from flows.options import EXAMPLES_DIR, WorkflowSource
from registry import ModelMetadata, ModelRegistry, ScoredDay
from registry.settings import load_settings
from tasks.core.data.synthetic import synthesize
from tasks.core.data.version import data_version
from tasks.core.windows.schedule import resolve_run
from tasks.core.windows.settings import WindowSettings
from tests.cli.test_qmp_models import qmp

NOBODY = "http://127.0.0.1:9/api"
CONFIG = EXAMPLES_DIR / "workflow_config_linear_Alpha158.yaml"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("preflight") / "qlib_data"
    synthesize(data, instruments=10, seed=3)
    return data


@pytest.fixture
def workspace(tmp_path: Path, small_data: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """An empty registry in a fresh workspace reading ``small_data``; Prefect unreachable."""
    monkeypatch.setenv("QMP_HOME", str(tmp_path))
    monkeypatch.setenv("QMP_PROVIDER_URI", str(small_data))
    monkeypatch.setenv("PREFECT_API_URL", NOBODY)
    for variable in ("QMP_REGISTRY_DIR", "QMP_DATABASE_URL", "QMP_ARTIFACT_URI"):
        monkeypatch.delenv(variable, raising=False)
    registry = ModelRegistry.from_settings()
    yield registry
    registry.close()


def _production(registry: ModelRegistry, name: str, tags: dict[str, str] | None = None) -> str:
    model_id = registry.register_model(
        {"w": 1}, ModelMetadata(model_name=name, performance_metrics={"ic_mean": 0.1}, tags=tags or {}))
    registry.set_production_model(model_id)
    return model_id


def test_predict_with_every_day_stored_answers_nothing_to_predict_without_prefect(
    workspace: ModelRegistry, small_data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_id = _production(workspace, "lin")
    last_day = data_version(small_data).calendar_end
    workspace.write_predictions("lin", [ScoredDay(model_id, last_day, [("SH600000", 0.5)])], data_version="v")
    code, out, err = qmp("predict", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert out.strip() == f"lin: nothing to predict (last stored prediction {last_day}, data calendar has no later day)"


def test_the_predict_no_op_imports_neither_qlib_nor_mlflow_nor_prefect(
    workspace: ModelRegistry, small_data: Path, tmp_path: Path
) -> None:
    model_id = _production(workspace, "lin")
    workspace.write_predictions("lin", [ScoredDay(model_id, data_version(small_data).calendar_end, [("SH600000", 0.5)])],
                                data_version="v")
    script = ("import sys\nimport deployments.cli as cli\nsys.argv = ['qmp', 'predict']\ntry:\n    cli.main()\n"
              "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
              "print('LOADED', [m for m in ('qlib', 'mlflow', 'prefect') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONSAFEPATH": "1"}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lin: nothing to predict" in done.stdout and "LOADED []" in done.stdout, done.stdout


def test_predict_without_production_models_answers_without_prefect(
    workspace: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = qmp("predict", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert out.strip() == "nothing to predict: no model name has a production model"


def test_retrain_on_unchanged_data_answers_no_new_data_without_prefect(
    workspace: ModelRegistry, small_data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = resolve_run(WorkflowSource(config_path=str(CONFIG)).load(), WindowSettings(), qlib_settings=load_settings())
    model_id = _production(workspace, "lin", tags=run.tags())
    code, out, err = qmp("retrain", "--config", str(CONFIG), "--model-name", "lin", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert f"no new data since {run.data_version.calendar_end}: nothing to train ({model_id} was trained" in out
    assert "Render the template" not in err  # Qlib's INFO logs go to the log file


def test_retrain_with_work_to_do_and_prefect_down_is_one_line(
    workspace: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = qmp("retrain", "--config", str(CONFIG), "--model-name", "lin", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: cannot reach the Prefect API at {NOBODY}: ")


def test_a_window_longer_than_the_calendar_is_one_line_before_prefect(
    workspace: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = qmp("retrain", "--config", str(CONFIG), "--model-name", "lin", "--rolling", "--train-days", "1238",
                         capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "Prefect" not in err


def test_the_local_server_hint_is_printed_once(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.cli.preflight import hint_local_server

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("QMP_HINTED_LOCAL_SERVER", raising=False)
    hint_local_server()
    hint_local_server()
    assert capsys.readouterr().err.count("PREFECT_API_URL is not set") == 1
    assert "qmp server" in LOCAL_SERVER_HINT and "export PREFECT_API_URL=http://127.0.0.1:4200/api" in LOCAL_SERVER_HINT
