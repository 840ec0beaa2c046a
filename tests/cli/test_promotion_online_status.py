"""`qmp models promote|rollback` go through the flows' operation: Qlib's own OnlineToolR sees the change."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import ModelMetadata, ModelRegistry
from registry.settings import load_settings
from tests.cli.test_qmp_models import qmp

pytestmark = pytest.mark.qlib
EXPERIMENT = "online-status-cli"


@pytest.fixture
def recorders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelRegistry, dict[str, str]]:
    """Two registered models, each with a real Qlib recorder in the settings' tracking database."""
    from qlib.workflow import R

    from tasks.core.qlib.session import init_qlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings = load_settings()
    (tmp_path / "qlib_data").mkdir()
    init_qlib(tmp_path / "qlib_data", settings=settings)
    registry = ModelRegistry.from_settings(settings)
    ids: dict[str, str] = {}
    for n in (1, 2):
        with R.start(experiment_name=EXPERIMENT):
            recorder_id = str(R.get_recorder().id)
        model_id = registry.register_model({"n": n}, ModelMetadata(
            model_name="online", experiment_name=EXPERIMENT, qlib_recorder_id=recorder_id,
            performance_metrics={"ic_mean": 0.01 * n}))
        ids[model_id] = recorder_id
    return registry, ids


def _online() -> set[str]:
    from qlib.workflow.online.utils import OnlineToolR

    return {rec.id for rec in OnlineToolR(default_exp_name=EXPERIMENT).online_models()}


def test_cli_promote_and_rollback_move_qlibs_online_tag_with_production(
    recorders: tuple[ModelRegistry, dict[str, str]], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, ids = recorders
    first, second = ids
    assert qmp("models", "promote", first, capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    assert _online() == {ids[first]}
    assert qmp("models", "promote", second, capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    assert _online() == {ids[second]}
    code, _, err = qmp("models", "rollback", "online", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert registry.get_production_model("online").model_id == first  # type: ignore[union-attr]
    assert _online() == {ids[first]}
