"""Settings come from QMP_ environment variables; explicit arguments win."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.settings import Settings, load_settings
from registry.store.db import sqlite_url_for


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QMP_REGISTRY_DIR", raising=False)
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_are_model_registry_and_no_database_url() -> None:
    settings = Settings()
    assert settings.registry_dir == Path("./model_registry") and settings.database_url is None


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
