"""What a new user meets first: the version, help that reads, one-line errors for a missing registry, an
unknown name and a bad setting."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer

from deployments.cli import app
from registry import ModelMetadata, ModelRegistry
from tests.cli.test_qmp_models import qmp


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace (QMP_HOME) with no registry, and no QMP_* setting pointing anywhere else."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QMP_HOME", str(tmp_path))
    for variable in ("QMP_REGISTRY_DIR", "QMP_DATABASE_URL", "QMP_ARTIFACT_URI"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = qmp("--version", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert out.strip() == f"qmp {version('qlib-model-pipeline')}"


@pytest.mark.parametrize("command", [(), ("cleanup",), ("models", "list")])
def test_help_shows_flags_without_a_type_placeholder(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = qmp(*command, "--help", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert "--help" in out
    assert "<bool>" not in out


@pytest.mark.parametrize("command", [("models", "list"), ("models", "show", "m_v1.0.0"), ("models", "history", "m")])
def test_read_commands_on_a_missing_registry_say_so_and_create_nothing(
    command: tuple[str, ...], empty_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = qmp(*command, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert f"no registry at {empty_dir / 'model_registry'}" in err
    assert "qmp db upgrade" in err
    assert list(empty_dir.iterdir()) == []


def test_history_of_an_unknown_name_is_an_error_like_show(
    empty_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ModelRegistry(empty_dir / "model_registry") as registry:
        registry.register_model({"w": 1}, ModelMetadata(model_name="known", performance_metrics={"ic_mean": 0.1}))
    code, out, _ = qmp("models", "history", "known", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "known_v1.0.0" in out
    code, out, err = qmp("models", "history", "nosuch", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    assert err.strip() == f"error: no model named 'nosuch' in registry at {empty_dir / 'model_registry'}"


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [("QMP_UI_STALE_DAYS", "abc", ("ui",)), ("QMP_ARTIFACT_COMPRESSION", "foo", ("models", "list"))],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    variable: str, value: str, command: tuple[str, ...], empty_dir: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = qmp(*command, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: invalid setting {variable}={value!r}: ")


def test_models_show_prints_tags_and_hyperparameters_as_titled_tables_and_json(
    empty_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    with ModelRegistry(empty_dir / "model_registry") as registry:
        model_id = registry.register_model({"w": 1}, ModelMetadata(
            model_name="shown", performance_metrics={"ic_mean": 0.1}, tags={"desk": "alpha"},
            hyperparameters={"num_leaves": 210, "loss": "mse"}))
    code, out, _ = qmp("models", "show", model_id, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert "Tags" in out and "Hyperparameters" in out and "num_leaves" in out
    assert "{'desk'" not in out and '{"num_leaves"' not in out
    code, out, _ = qmp("models", "show", model_id, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)["model"]["tags"] == {"desk": "alpha"}
    code, out, _ = qmp("models", "history", "shown", "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)[0]["model_id"] == model_id


def test_serve_help_names_every_served_deployment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = qmp("serve", "--help", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    for served in ("retrain", "predict-daily", "rolling", "cleanup", "promote", "rollback"):
        assert served in out


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command of ``group`` (a Typer/Click group) by its full name."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group of its own
            found.update(_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


def test_every_list_command_prints_json_with_json() -> None:
    """A list (`... list`, `... history`, `monitor`) can feed a script: each takes `--json`."""
    commands = _commands(typer.main.get_group(app))
    listing = sorted(name for name in commands if name.split()[-1] in ("list", "history", "monitor"))
    assert listing == ["approvals list", "data history", "models history", "models list", "monitor"]
    assert [name for name in listing if not any("--json" in p.opts for p in commands[name].params)] == []
