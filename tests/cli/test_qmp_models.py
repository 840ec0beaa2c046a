"""`qmp models|db|registry ...` through the real entry point, against SQLite and PostgreSQL registries."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from deployments.cli import main
from registry import ModelMetadata, ModelRegistry, ModelStatus


def qmp(*args: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run `qmp ARGS` in-process through `main()`; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["qmp", *args])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_registry(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    for ic in (0.01, 0.03, 0.02):
        registry.register_model({"ic": ic}, ModelMetadata(model_name="lgbm", performance_metrics={"ic_mean": ic}, tags={"universe": "csi300"}))
    return registry


def test_list_shows_every_model_and_filters_by_status_and_metric(
    cli_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = qmp("models", "list", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert all(f"lgbm_v1.{i}.0" in out for i in range(3))
    code, out, _ = qmp("models", "list", "--min", "ic_mean=0.025", "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert [m["model_id"] for m in json.loads(out)] == ["lgbm_v1.1.0"]


def test_promote_archive_restore_rollback_and_history_record_the_reason(
    cli_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = lambda *a: qmp(*a, capsys=capsys, monkeypatch=monkeypatch)  # noqa: E731
    assert run("models", "promote", "lgbm_v1.0.0", "--reason", "first", "--actor", "ann")[0] == 0
    assert run("models", "promote", "lgbm_v1.1.0", "--reason", "better IC")[0] == 0
    assert cli_registry.get_production_model("lgbm").model_id == "lgbm_v1.1.0"  # type: ignore[union-attr]
    assert run("models", "archive", "lgbm_v1.2.0", "--reason", "stale")[0] == 0
    assert cli_registry.get_model_info("lgbm_v1.2.0").status == ModelStatus.ARCHIVED
    assert run("models", "restore", "lgbm_v1.2.0")[0] == 0
    assert cli_registry.get_model_info("lgbm_v1.2.0").status == ModelStatus.REGISTERED
    code, out, _ = run("models", "rollback", "lgbm", "--reason", "bad live fills")
    assert code == 0 and "lgbm_v1.0.0" in out
    code, out, _ = run("models", "history", "lgbm")
    assert code == 0 and "bad live fills" in out and "rolled_back" in out and "ann" in out
    code, out, _ = run("models", "show", "lgbm_v1.0.0")
    assert code == 0 and cli_registry.get_model_info("lgbm_v1.0.0").checksum in out


def test_registry_errors_are_one_line_and_exit_non_zero(
    cli_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_registry.set_production_model("lgbm_v1.1.0")
    for args, message in (
        (("models", "show", "nope_v9"), "not found"),
        (("models", "delete", "lgbm_v1.1.0", "--yes"), "production"),
        (("models", "archive", "lgbm_v1.1.0"), "production"),
    ):
        code, out, err = qmp(*args, capsys=capsys, monkeypatch=monkeypatch)
        assert code == 1
        assert message in err and "Traceback" not in err + out
        assert len(err.strip().splitlines()) == 1


def test_delete_removes_a_model_but_keeps_its_history(
    cli_registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, _ = qmp("models", "delete", "lgbm_v1.2.0", "--yes", "--reason", "mistake", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert [m.model_id for m in cli_registry.list_models()] == ["lgbm_v1.1.0", "lgbm_v1.0.0"]
    assert cli_registry.history(model_id="lgbm_v1.2.0")[-1].event == "deleted"


def test_export_and_import_index_round_trip_the_seed_layout(
    cli_registry: ModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_registry.set_production_model("lgbm_v1.1.0")
    code, _, _ = qmp("registry", "export-index", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    index = json.loads((cli_registry.registry_dir / "index.json").read_text())
    assert index["lgbm_v1.1.0"]["status"] == "production"
    assert set(index["lgbm_v1.0.0"]) == {
        "model_id", "model_name", "version", "model_type", "training_date", "performance_metrics", "status",
        "model_path", "metadata_path",
    }
    target = tmp_path / "imported"
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(target))
    monkeypatch.delenv("QMP_DATABASE_URL")
    code, out, _ = qmp("registry", "import-index", str(cli_registry.registry_dir), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "imported 3 models" in out
    with ModelRegistry(target) as imported:
        assert imported.get_production_model("lgbm").model_id == "lgbm_v1.1.0"  # type: ignore[union-attr]
        assert imported.get_model("lgbm_v1.0.0") == {"ic": 0.01}
        assert {m.model_id: m.status for m in imported.list_models()} == {
            m.model_id: m.status for m in cli_registry.list_models()
        }


def test_db_upgrade_creates_the_schema_of_a_new_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    code, out, _ = qmp("db", "upgrade", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "up to date" in out
    assert (tmp_path / "fresh" / "registry.db").exists()
