"""Our rolling replay against Qlib's own `qlib.contrib.rolling.base.Rolling`, same configuration, data and windows.

    .venv/bin/python benchmarks/rolling_vs_qlib.py                      # full size: 60 instruments, 46 windows
    .venv/bin/python benchmarks/rolling_vs_qlib.py --test-end 2018-06-30  # reduced: fewer windows

The configuration is Qlib's rolling baseline (examples/benchmarks_dynamic/baseline, ridge on Alpha158,
step 20, horizon 20) on `qmp data synth --instruments 60 --start 2007-01-01 --end 2020-09-30`. Each run is a
fresh Python process (as a Prefect worker runs a flow run); peak memory is the peak of the summed RSS of
the run's whole process tree (the flow and its worker processes), sampled every 0.2 s. Runs:

- qlib: `Rolling(conf_path, horizon=20, step=20).run()` with its handler cache on, as it ships (the cache
  is written beside a fresh copy of the YAML, so the run builds it once);
- ours, `qmp rolling --processors fixed|refit --workers 1|2`, each with a fresh registry (so it builds its
  features once) against one local Prefect server started before the runs.

Feature builds count the handler set-ups (`DataHandlerLP.setup_data`) of the run's main process; our
worker processes only unpickle the stored handler. The fixed-mode combined predictions are compared
with Qlib's (max abs difference and IC difference).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "examples" / "benchmarks_dynamic" / "baseline" / "workflow_config_linear_Alpha158.yaml"
STEP, HORIZON = 20, 20


def _count_builds() -> dict[str, int]:
    from qlib.data.dataset.handler import DataHandlerLP

    counter = {"builds": 0}
    original = DataHandlerLP.setup_data

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter["builds"] += 1
        return original(self, *args, **kwargs)

    DataHandlerLP.setup_data = counting  # type: ignore[method-assign]
    return counter


def child_qlib(config: Path, work: Path) -> dict[str, Any]:
    """Qlib's Rolling, end to end (train every window, ensemble, SigAna + PortAna records)."""
    from qlib.contrib.rolling.base import Rolling
    from qlib.workflow import R

    from registry.settings import load_settings
    from tasks.core.qlib.session import init_from_qlib_init
    from tasks.core.qlib.workflow_config import load_workflow_config

    settings = load_settings(registry_dir=work / "qlib-registry")
    init_from_qlib_init(load_workflow_config(config).qlib_init, settings)
    builds = _count_builds()
    started = time.perf_counter()
    rolling = Rolling(conf_path=config, horizon=HORIZON, step=STEP, exp_name="qlib_rolling", rolling_exp="qlib_rolling_models")
    windows = len(rolling.get_task_list())
    rolling.run()
    seconds = time.perf_counter() - started
    recorder = R.get_recorder(experiment_name="qlib_rolling", recorder_id=rolling._rid)
    recorder.load_object("pred.pkl").to_pickle(work / "qlib_pred.pkl")
    recorder.load_object("label.pkl").to_pickle(work / "qlib_label.pkl")
    return {"seconds": seconds, "windows": windows, "feature_builds": builds["builds"]}


def child_ours(config: Path, work: Path, processors: str, workers: int) -> dict[str, Any]:
    """`qmp rolling` in this process (the flow on the benchmark's Prefect server)."""
    from flows.retrain import WorkflowSource
    from flows.rolling import ReplayRunner, rolling
    from tasks.core.replay.plan import ReplaySpec

    builds = _count_builds()
    started = time.perf_counter()
    record = rolling(model_name="bench", workflow=WorkflowSource(config_path=str(config)),
                     replay=ReplaySpec(step=STEP, horizon=HORIZON, processors=processors),  # type: ignore[arg-type]
                     runner=ReplayRunner(workers=workers))
    seconds = time.perf_counter() - started
    shutil.copy(Path(record.record_path).with_name("pred.pkl"), work / f"ours_{processors}_{workers}_pred.pkl")  # type: ignore[arg-type]
    shutil.copy(Path(record.record_path).with_name("label.pkl"), work / f"ours_{processors}_{workers}_label.pkl")  # type: ignore[arg-type]
    return {"seconds": seconds, "windows": len(record.windows), "feature_builds": builds["builds"],
            "ic": record.combined["ic_mean"], "split": record.seconds}


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def run_child(args: list[str], env: dict[str, str], work: Path, label: str) -> dict[str, Any]:
    peak = {"rss": 0}
    with open(work / f"{label}.out", "w+b") as out, open(work / f"{label}.err", "w+b") as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, __file__, *args], env=env, stdout=out, stderr=err, cwd=work)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak["rss"] = max(peak["rss"], _tree_rss(child.pid))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = child.wait()
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if code:
        sys.stderr.write(stderr[-4000:])
        raise RuntimeError(f"{label} failed with exit code {code}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall=wall, peak_mib=peak["rss"] / 2**20)
    return result


def start_prefect_server(home: Path, env: dict[str, str], timeout: float = 600) -> tuple[subprocess.Popen[bytes], str, float]:
    """A local `prefect server` for the runs (a loaded 2-core machine can take minutes to answer /health)."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    api = f"http://127.0.0.1:{port}/api"
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PREFECT_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=5) as reply:
                if reply.status == 200:
                    return server, api, time.perf_counter() - started
        except OSError:
            time.sleep(1)
    server.terminate()
    raise RuntimeError(f"the Prefect server did not start within {timeout:.0f} s")


def compare(work: Path, ours: str) -> dict[str, float]:
    import pandas as pd
    from qlib.contrib.eva.alpha import calc_ic

    theirs, their_label = pd.read_pickle(work / "qlib_pred.pkl"), pd.read_pickle(work / "qlib_label.pkl")
    mine, my_label = pd.read_pickle(work / f"{ours}_pred.pkl"), pd.read_pickle(work / f"{ours}_label.pkl")
    joined = mine.iloc[:, 0].to_frame("ours").join(theirs.iloc[:, 0].to_frame("qlib"), how="outer")
    ic_ours = calc_ic(mine.iloc[:, 0], my_label.iloc[:, 0])[0].mean()
    ic_qlib = calc_ic(theirs.iloc[:, 0], their_label.iloc[:, 0])[0].mean()
    return {"rows_ours": len(mine), "rows_qlib": len(theirs),
            "max_abs_diff": float((joined["ours"] - joined["qlib"]).abs().max()),
            "ic_ours": float(ic_ours), "ic_qlib": float(ic_qlib), "ic_diff": float(abs(ic_ours - ic_qlib))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs="*")
    parser.add_argument("--instruments", type=int, default=60)
    parser.add_argument("--start", default="2007-01-01")
    parser.add_argument("--end", default="2020-09-30")
    parser.add_argument("--test-end", default=None, help="Shorter test period (fewer windows) for a reduced run.")
    parser.add_argument("--runs", default="qlib,fixed-1,fixed-2,refit-2,refit-1",
                        help="Which runs, in order: qlib and/or MODE-WORKERS.")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if args.child is not None:
        kind, config, work = args.child[0], Path(args.child[1]), Path(args.child[2])
        if kind == "qlib":
            result = child_qlib(config, work)
        else:
            result = child_ours(config, work, args.child[3], int(args.child[4]))
        print(json.dumps(result, default=str))
        return

    import yaml

    from tasks.core.data.synthetic import synthesize

    work = args.work or Path(tempfile.mkdtemp(prefix="qmp-rolling-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "qlib_data"
    if not (data / "calendars" / "day.txt").is_file():
        print(f"synthesizing {args.instruments} instruments {args.start}..{args.end} into {data}", flush=True)
        synthesize(data, instruments=args.instruments, start=args.start, end=args.end, seed=7)
    raw = yaml.safe_load(CONFIG.read_text())
    raw["qlib_init"]["provider_uri"] = str(data)
    if args.test_end:
        raw["task"]["dataset"]["kwargs"]["segments"]["test"][1] = args.test_end
        raw["task"]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"] = args.test_end
        raw["port_analysis_config"]["backtest"]["end_time"] = args.test_end
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QMP_", "PREFECT_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    server, api, server_seconds = start_prefect_server(work / "prefect", env)
    env["PREFECT_API_URL"] = api
    print(f"Prefect server up in {server_seconds:.1f} s; work dir {work}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    try:
        for run in args.runs.split(","):
            run_dir = work / run
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir()
            config = run_dir / "workflow.yaml"  # Qlib's Rolling writes its handler cache beside the YAML
            config.write_text(yaml.safe_dump(raw, sort_keys=False))
            run_env = {**env, "QMP_REGISTRY_DIR": str(run_dir / "registry")}
            child = ["--child", "qlib", str(config), str(work)] if run == "qlib" else \
                ["--child", "ours", str(config), str(work), *run.split("-")]
            results[run] = run_child(child, run_env, run_dir, run)
            r = results[run]
            print(f"{run:>8}: {r['windows']} windows, {r['wall']:.1f} s wall ({r['seconds']:.1f} s in the run), "
                  f"peak {r['peak_mib']:.0f} MiB, feature builds {r['feature_builds']}"
                  + (f", combined IC {r['ic']:.6f}" if "ic" in r else ""), flush=True)
            if "split" in r:
                print("          split: " + ", ".join(f"{k} {v:.1f}" for k, v in r["split"].items()), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if "qlib" in results:
        for run in results:
            if run.startswith("fixed"):
                mode, workers = run.split("-")
                diff = compare(work, f"ours_{mode}_{workers}")
                print(f"{run} vs qlib: " + ", ".join(f"{k} {v:.3g}" for k, v in diff.items()), flush=True)
            if run.startswith("refit"):
                mode, workers = run.split("-")
                diff = compare(work, f"ours_{mode}_{workers}")
                print(f"{run} vs qlib (expected to differ): IC {diff['ic_ours']:.6f} vs {diff['ic_qlib']:.6f}", flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps({k: {m: v[m] for m in ("wall", "peak_mib", "windows", "feature_builds")} for k, v in results.items()}))


if __name__ == "__main__":
    main()
