"""One workspace: the registry the demo points the settings file at is found from any directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.cli.demo import use_demo_workspace
from registry import ModelMetadata, ModelRegistry
from tests.cli.test_qmp_models import qmp


def test_after_the_demo_points_the_workspace_any_directory_sees_its_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMP_HOME", str(tmp_path / "home"))
    for variable in ("QMP_REGISTRY_DIR", "QMP_PROVIDER_URI", "QMP_DATABASE_URL", "QMP_ARTIFACT_URI"):
        monkeypatch.setenv(variable, "")  # recorded, so what the demo sets in this process is undone after the test
        monkeypatch.delenv(variable)
    settings_file = use_demo_workspace(tmp_path / "home" / "demo")
    with ModelRegistry(tmp_path / "home" / "demo" / "model_registry") as registry:
        registry.register_model({"w": 1}, ModelMetadata(model_name="seen", performance_metrics={"ic_mean": 0.1}))
    for variable in ("QMP_REGISTRY_DIR", "QMP_PROVIDER_URI"):  # a new shell: only the settings file remains
        monkeypatch.delenv(variable)
    elsewhere = tmp_path / "some" / "other" / "dir"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    code, out, err = qmp("models", "list", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "seen_v1.0.0" in out
    assert settings_file == tmp_path / "home" / "settings.env"
    assert f"QMP_PROVIDER_URI={tmp_path / 'home' / 'demo' / 'qlib_data'}" in settings_file.read_text()
    assert list(elsewhere.iterdir()) == []
