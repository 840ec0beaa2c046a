"""Settings come from QMP_ environment variables; explicit arguments win."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.settings import Settings, load_settings, update_workspace_settings, workspace_home
from registry.store.db import sqlite_url_for


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QMP_REGISTRY_DIR", raising=False)
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_are_the_workspace_registry_and_no_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QMP_HOME", str(tmp_path / "home"))
    settings = Settings()
    assert settings.registry_dir == tmp_path / "home" / "model_registry" and settings.database_url is None


def test_the_workspace_defaults_to_the_users_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QMP_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert workspace_home() == tmp_path / "xdg" / "qmp"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert Settings().registry_dir == tmp_path / "user" / ".local" / "share" / "qmp" / "model_registry"


def test_the_workspace_settings_file_is_read_from_any_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QMP_HOME", str(tmp_path / "home"))
    for variable in ("QMP_PROVIDER_URI", "QMP_REGISTRY_DIR"):  # the workspace file speaks only where these are unset
        monkeypatch.delenv(variable, raising=False)
    update_workspace_settings({"QMP_PROVIDER_URI": "/data/qlib", "QMP_REGISTRY_DIR": "/data/registry"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings()
    assert settings.provider_uri == Path("/data/qlib") and settings.registry_dir == Path("/data/registry")


def test_the_working_directory_env_file_and_the_environment_win_over_the_workspace_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QMP_HOME", str(tmp_path / "home"))
    update_workspace_settings({"QMP_PROVIDER_URI": "/workspace/data", "QMP_DATABASE_URL": "sqlite:///workspace.db"})
    (tmp_path / ".env").write_text("QMP_DATABASE_URL=sqlite:///dotenv.db\n")
    monkeypatch.setenv("QMP_PROVIDER_URI", "/env/data")
    settings = Settings()
    assert settings.database_url == "sqlite:///dotenv.db" and settings.provider_uri == Path("/env/data")


def test_updating_the_workspace_file_keeps_its_other_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QMP_HOME", str(tmp_path))
    (tmp_path / "settings.env").write_text("# mine\nQMP_FEATURE_CACHE=qlib\nQMP_DATABASE_URL=postgresql+psycopg://db/x\n")
    path = update_workspace_settings({"QMP_PROVIDER_URI": "/d"}, remove=("QMP_DATABASE_URL",))
    assert path.read_text() == "# mine\nQMP_FEATURE_CACHE=qlib\nQMP_PROVIDER_URI=/d\n"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "from_env"))
    monkeypatch.setenv("QMP_DATABASE_URL", "postgresql+psycopg://u@db/registry")
    settings = Settings()
    assert settings.registry_dir == tmp_path / "from_env"
    assert settings.database_url == "postgresql+psycopg://u@db/registry"


def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "from_env"))
    monkeypatch.setenv("QMP_DATABASE_URL", "sqlite:///env.db")
    settings = load_settings(registry_dir=tmp_path / "explicit", database_url="sqlite:///explicit.db")
    assert settings.registry_dir == tmp_path / "explicit" and settings.database_url == "sqlite:///explicit.db"


def test_none_overrides_leave_the_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMP_DATABASE_URL", "sqlite:///env.db")
    assert load_settings(database_url=None).database_url == "sqlite:///env.db"


def test_dot_env_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("QMP_DATABASE_URL=sqlite:///dotenv.db\n")
    assert Settings().database_url == "sqlite:///dotenv.db"


def test_registry_from_settings_uses_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from registry import ModelRegistry

    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "env_registry"))
    with ModelRegistry.from_settings() as reg:
        assert reg.registry_dir == tmp_path / "env_registry"
        assert reg.database_url == sqlite_url_for((tmp_path / "env_registry").resolve())
    assert (tmp_path / "env_registry" / "registry.db").is_file()
