"""Every `qmp` command, given a bad input of the kinds users cause (bad YAML, missing data directory,
unreachable database, Prefect server down), prints one line naming it, exits 1, shows no traceback and
writes nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from registry import ModelRegistry
from tests.cli.test_qmp_models import qmp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOOD_YAML = EXAMPLES / "workflow_config_linear_Alpha158.yaml"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _closed_port()
NO_DATABASE = f"postgresql+psycopg://postgres@127.0.0.1:{PORT}/qmp"
NO_PREFECT = f"http://127.0.0.1:{PORT}/api"

# (command, environment, what the one line must name)
CASES = [
    (["data", "synth", "--out", "{tmp}/out", "--start", "2020-01-01", "--end", "2020-02-01"], {}, "business days"),
    (["data", "import-csv", "{tmp}/no_csvs", "--out", "{tmp}/out"], {}, "no_csvs"),
    (["data", "validate", "{tmp}/no_data"], {}, "no_data"),
    (["retrain", "--config", "{tmp}/bad.yaml", "--model-name", "m"], {}, "invalid YAML"),
    (["retrain", "--config", str(GOOD_YAML), "--model-name", "m", "--provider-uri", "{tmp}/no_data"], {},
     "does not exist"),
    (["retrain", "--config", str(GOOD_YAML), "--model-name", "m", "--provider-uri", "{tmp}/data"],
     {"PREFECT_API_URL": NO_PREFECT}, "not a Qlib data directory"),  # the data is checked before Prefect
    (["serve"], {"PREFECT_API_URL": NO_PREFECT}, "Prefect API"),
    (["demo", "--workspace", "{tmp}/demo"], {"PREFECT_API_URL": NO_PREFECT}, "Prefect API"),
    (["models", "list"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "show", "m_v1.0.0"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "promote", "m_v1.0.0"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "archive", "m_v1.0.0"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "restore", "m_v1.0.0"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "delete", "m_v1.0.0", "--yes"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "rollback", "m"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "history", "m"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "compare", "m_v1.0.0", "m_v1.1.0"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["cleanup"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["db", "upgrade"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["registry", "export-index"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["registry", "import-index", "{tmp}/data"], {"QMP_DATABASE_URL": NO_DATABASE}, "registry database"),
    (["models", "show", "nobody_v1.0.0"], {}, "not found"),
]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize(("args", "env", "named"), CASES, ids=[" ".join(c[0][:2]) + f" [{c[2]}]" for c in CASES])
def test_bad_input_is_one_line_exit_1_no_traceback_nothing_written(
    args: list[str], env: dict[str, str], named: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    (tmp_path / "no_csvs").mkdir()
    (tmp_path / "data").mkdir()
    registry_dir = tmp_path / "registry"
    if "QMP_DATABASE_URL" not in env:
        ModelRegistry(registry_dir).close()  # the embedded SQLite registry exists already: only bad input is tested
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry_dir))
    for key in ("QMP_DATABASE_URL", "QMP_ARTIFACT_URI", "QMP_PROVIDER_URI", "PREFECT_API_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = _files(tmp_path)

    code, _, err = qmp(*(a.format(tmp=tmp_path) for a in args), capsys=capsys, monkeypatch=monkeypatch)

    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], err
    assert "Traceback" not in err
    assert _files(tmp_path) - before <= {registry_dir / "registry.db", registry_dir / "registry.db-wal",
                                         registry_dir / "registry.db-shm"}
