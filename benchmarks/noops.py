"""The no-ops, whole process: `qmp retrain` with nothing new to train and `qmp predict` with nothing to predict,
on the demo's workspace, without `PREFECT_API_URL` (a user's default).

Set-up, in a temporary `QMP_HOME`: `qmp demo` (synthetic data, two retrains), then each command once for real,
all against a `qmp server` started for them. The server is then stopped and each no-op is run `--runs` times in
a fresh process from another directory; the median wall and CPU times are printed. A no-op that started a
Prefect server or a flow run would print something other than its no-op line, which fails the benchmark.

    .venv/bin/python benchmarks/noops.py [--runs 3] [--instruments 30] [--home DIR]

`--home DIR` keeps the workspace in DIR and, when DIR already holds one, skips the set-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENTRY = "import sys; sys.argv[0] = 'qmp'; from deployments.cli import main; main()"
MODEL_NAME = "alpha158_demo"  # the demo's
NOOPS = {
    "qmp retrain (no new data)": (["retrain", "--config", "examples/workflow_config_lightgbm_Alpha158.yaml",
                                   "--model-name", MODEL_NAME], "nothing to train"),
    "qmp predict (nothing to predict)": (["predict"], "nothing to predict"),
}


def _env(home: Path, api_url: str | None) -> dict[str, str]:
    env = {**os.environ, "QMP_HOME": str(home), "PREFECT_HOME": str(home / "prefect"), "COLUMNS": "120"}
    for name in ("PREFECT_API_URL", "QMP_REGISTRY_DIR", "QMP_DATABASE_URL", "QMP_PROVIDER_URI", "QMP_ARTIFACT_URI",
                 "QMP_MLFLOW_URI"):
        env.pop(name, None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _qmp(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, stdout) of one `qmp` process; exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"qmp {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


@contextmanager
def _prefect_server(home: Path) -> Iterator[str]:
    """A `qmp server` on a free port for the set-up; its PREFECT_API_URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", ENTRY, "server", "--port", str(port)], env=_env(home, None),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        if "export PREFECT_API_URL=" not in ready:
            raise SystemExit(f"qmp server did not start: {ready!r}")
        yield ready.rsplit("=", 1)[1].strip()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)


def _set_up(home: Path, cwd: Path, instruments: int) -> None:
    started = time.perf_counter()
    with _prefect_server(home) as url:
        _qmp(["demo", "--instruments", str(instruments)], _env(home, url), cwd)
        for command, _ in NOOPS.values():  # each once for real: the next runs have nothing to do
            _qmp(command, _env(home, url), cwd)
    print(f"set-up (qmp server, qmp demo --instruments {instruments}, each command once): "
          f"{time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Timed runs per no-op.")
    parser.add_argument("--instruments", type=int, default=30, help="Synthetic instruments of the demo.")
    parser.add_argument("--home", type=Path, help="The workspace (QMP_HOME) to set up or reuse (default: temporary).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qmp-noops-") as tmp:
        home, elsewhere = args.home or Path(tmp) / "home", Path(tmp) / "elsewhere"
        elsewhere.mkdir(parents=True)
        if not (home / "demo" / "model_registry").is_dir():
            _set_up(home, elsewhere, args.instruments)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
              f"{args.runs} runs per no-op, no PREFECT_API_URL (medians, seconds)")
        print(f"{'command':<34} {'wall':>6} {'CPU':>6}   output")
        for label, (command, expected) in NOOPS.items():
            runs = [_qmp(command, _env(home, None), elsewhere) for _ in range(args.runs)]
            for _, _, out in runs:
                if expected not in out:
                    raise SystemExit(f"{label}: expected {expected!r}, got:\n{out[-2000:]}")
            wall = statistics.median(w for w, _, _ in runs)
            cpu = statistics.median(c for _, c, _ in runs)
            print(f"{label:<34} {wall:>6.2f} {cpu:>6.2f}   {runs[0][2].strip().splitlines()[-1][:90]}")


if __name__ == "__main__":
    main()
