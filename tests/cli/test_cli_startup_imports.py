"""The registry commands answer without importing Prefect, Qlib or MLflow (each in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from registry import ModelMetadata, ModelRegistry

HEAVY = ("prefect", "qlib", "mlflow")
# Runs each command through the real entry point in one fresh interpreter and reports, after each, its exit
# code and which heavy packages are in sys.modules (none was imported before the first command).
SCRIPT = """
import json, sys
import deployments.cli as cli
report = [{"command": "<import>", "code": 0, "loaded": [m for m in HEAVY if m in sys.modules]}]
for args in COMMANDS:
    sys.argv = ["qmp", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    report.append({"command": " ".join(args), "code": code, "loaded": [m for m in HEAVY if m in sys.modules]})
print("REPORT" + json.dumps(report))
"""


def test_help_and_registry_commands_import_neither_prefect_nor_qlib_nor_mlflow(tmp_path: Path) -> None:
    registry_dir = tmp_path / "registry"
    with ModelRegistry(registry_dir) as registry:
        first = registry.register_model({"w": 1}, ModelMetadata(model_name="lgbm", performance_metrics={"ic_mean": 0.01}))
        second = registry.register_model({"w": 2}, ModelMetadata(model_name="lgbm", performance_metrics={"ic_mean": 0.02}))
    commands = [
        ["--help"], ["models", "list"], ["models", "show", first], ["models", "history", "lgbm"],
        ["models", "compare", first, second], ["registry", "export-index", "--out", str(tmp_path / "index.json")],
        ["db", "upgrade"], ["cleanup", "--dry-run"], ["retrain", "--help"], ["data", "--help"],
    ]
    # PYTHONSAFEPATH: like the `qmp` script, `python -c` then does not put the cwd (which holds `registry/`) first.
    env = {**os.environ, "QMP_REGISTRY_DIR": str(registry_dir), "COLUMNS": "200", "PYTHONSAFEPATH": "1"}
    env.pop("QMP_DATABASE_URL", None)
    code = SCRIPT.replace("HEAVY", repr(HEAVY)).replace("COMMANDS", repr(commands))
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    assert [row["command"] for row in report[1:]] == [" ".join(c) for c in commands]
    for row in report:
        assert row["code"] == 0, (row, done.stderr[-2000:])
        assert row["loaded"] == [], f"`qmp {row['command']}` imported {row['loaded']}"
    assert "Gym has been unmaintained" not in done.stderr
