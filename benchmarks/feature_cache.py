"""Qlib's dataset cache (QMP_FEATURE_CACHE=qlib) in the retrain flow, against bare Qlib without a cache.

    .venv/bin/python benchmarks/feature_cache.py [--instruments 300] [--start 2007-01-01] [--end 2020-09-30]

Synthesizes the data (csi300 scale by default: 300 instruments, 2007-01-01..2020-09-30, seed 7) and runs
the upstream LightGBM/Alpha158 workflow's dates (handler 2008-01-01..2020-08-01; train to 2014, valid
2015-2016, test and backtest 2017..2020-08-01) in fresh processes, one after another:

- bare: plain Qlib without a cache (qlib.init -> DatasetH -> fit -> predict -> IC -> backtest);
- off: the retrain without the cache (today's);
- cold: the retrain with the cache on and the cache directory empty;
- warm: again, the cache built by the previous run;
- +1 day: after one trading day is appended to the data (the cache is extended by Qlib's update);

where "the retrain" is the flow on a local Prefect server with `--flow`, else the flow's Qlib steps called
directly (`prepare_dataset -> train_model -> evaluate`, the functions its tasks call: what the cache
changes is inside them, and a busy machine may not start a Prefect server in time);

then the cost of loading one day of features for a prediction: without the cache, through a cold cache
(which Qlib builds over the whole calendar), through a warm one, and as the predict path reads it
(`skip_cold_qlib_cache`: uncached when cold). Feature loading is timed inside each run (Qlib's data loader),
as is the whole run; the cache's size on disk is reported. Redis must answer at QMP_REDIS_URL
(default redis://127.0.0.1:6379/1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from pipeline_vs_qlib import run_bare, run_flow, start_prefect_server  # noqa: E402

CONFIG = ROOT / "examples" / "workflow_config_lightgbm_Alpha158.yaml"
REDIS_URL = os.environ.get("QMP_REDIS_URL", "redis://127.0.0.1:6379/1")


def upstream_dates(work: Path) -> Path:
    """The example workflow with the upstream csi300 benchmark's dates and portfolio size."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    raw = yaml.load(CONFIG.read_text())
    handler = raw["data_handler_config"]
    handler.update(start_time="2008-01-01", end_time="2020-08-01", fit_start_time="2008-01-01",
                   fit_end_time="2014-12-31")
    raw["task"]["dataset"]["kwargs"]["handler"]["kwargs"] = handler
    raw["task"]["dataset"]["kwargs"]["segments"] = {
        "train": ["2008-01-01", "2014-12-31"], "valid": ["2015-01-01", "2016-12-31"],
        "test": ["2017-01-01", "2020-08-01"]}
    port = raw["port_analysis_config"]
    port["strategy"]["kwargs"].update(topk=50, n_drop=5)
    port["backtest"].update(start_time="2017-01-01", end_time="2020-08-01")
    for record in raw["task"]["record"]:
        if record["class"] == "PortAnaRecord":
            record["kwargs"]["config"] = port
    path = work / "workflow_csi300.yaml"
    with path.open("w") as handle:
        yaml.dump(raw, handle)
    return path


def _time_feature_loading() -> dict[str, float]:
    """Sum the time Qlib's data loaders spend reading features (the part the cache replaces)."""
    from qlib.data.dataset.loader import QlibDataLoader

    spent = {"s": 0.0}
    original = QlibDataLoader.load

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent["s"] += time.perf_counter() - started

    QlibDataLoader.load = timed  # type: ignore[method-assign]
    return spent


def child(side: str, data: Path, work: Path, config: Path) -> dict[str, Any]:
    """One measured run in this (fresh) process."""
    import pipeline_vs_qlib

    pipeline_vs_qlib.CONFIG = config
    loading = _time_feature_loading()
    if side == "bare":
        result = run_bare(data, work)
    elif side.startswith("predict"):
        result = predict_day(data, config, cache=side != "predict_off", skip_cold=side == "predict_skip")
    elif side.startswith("load"):
        result = load_span(data, config, cache=side != "load_off")
    elif side == "steps":
        result = run_steps(data, work, config)
    else:
        result = run_flow(data, work, heartbeats=False)
    return {**result, "features_s": loading["s"]}


def run_steps(data: Path, work: Path, config: Path) -> dict[str, float]:
    """The retrain flow's Qlib steps, called directly: prepare -> train -> evaluate."""
    os.environ.update({"QMP_REGISTRY_DIR": str(work / "registry"), "QMP_MLFLOW_URI": f"sqlite:///{work / 'mlflow_steps.db'}"})
    from registry.settings import load_settings
    from tasks.core.qlib.evaluation import evaluate
    from tasks.core.qlib.training import prepare_dataset, train_model
    from tasks.core.qlib.workflow_config import load_workflow_config

    started = time.perf_counter()
    settings = load_settings()
    cfg = load_workflow_config(config, provider_uri=data)
    dataset = prepare_dataset(cfg, settings)
    result = train_model(cfg, dataset, "bench-feature-cache", settings=settings)
    metrics = evaluate(result.model, dataset, cfg, result.recorder_id, settings=settings).metrics
    return {"run_s": time.perf_counter() - started, "ic_mean": metrics.get("ic_mean", float("nan"))}


def predict_day(data: Path, config: Path, *, cache: bool, skip_cold: bool) -> dict[str, float]:
    """Load the last trading day's features for the workflow's handler, as a one-day prediction would."""
    from registry.settings import load_settings
    from tasks.core.data.qlib_binary import read_calendar
    from tasks.core.features.raw import compute_raw_features, skip_cold_qlib_cache
    from tasks.core.qlib.session import init_qlib
    from tasks.core.qlib.workflow_config import load_workflow_config

    os.environ["QMP_FEATURE_CACHE"] = "qlib" if cache else "off"
    cfg = load_workflow_config(config, provider_uri=data)
    handler = dict(cfg.dataset["kwargs"]["handler"])
    day = f"{read_calendar(data)[-1]:%Y-%m-%d}"
    handler["kwargs"] = {**handler["kwargs"], "start_time": day, "end_time": day}
    started = time.perf_counter()
    init_qlib(data, settings=load_settings())
    if skip_cold:
        with skip_cold_qlib_cache(handler) as warm:
            rows = len(compute_raw_features(handler, (day, day)))
    else:
        warm = cache
        rows = len(compute_raw_features(handler, (day, day)))
    return {"run_s": time.perf_counter() - started, "rows": rows, "used_cache": float(warm)}


def load_span(data: Path, config: Path, *, cache: bool) -> dict[str, float]:
    """Load the workflow handler's raw features over its whole span (the part of a retrain the cache replaces)."""
    from registry.settings import load_settings
    from tasks.core.features.raw import compute_raw_features
    from tasks.core.qlib.session import init_qlib
    from tasks.core.qlib.workflow_config import load_workflow_config

    os.environ["QMP_FEATURE_CACHE"] = "qlib" if cache else "off"
    cfg = load_workflow_config(config, provider_uri=data)
    handler = dict(cfg.dataset["kwargs"]["handler"])
    started = time.perf_counter()
    init_qlib(data, settings=load_settings())
    rows = len(compute_raw_features(handler, (handler["kwargs"]["start_time"], handler["kwargs"]["end_time"])))
    return {"run_s": time.perf_counter() - started, "rows": rows}


def run_child(side: str, data: Path, work: Path, config: Path, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--data", str(data), "--work", str(work), "--config", str(config)],
        env=env, cwd=work, capture_output=True, text=True,
    )
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError(f"{side} failed ({out.returncode})")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    print(f"  {side:14s} run {result['run_s']:7.1f} s  features {result['features_s']:6.1f} s", flush=True)
    return result


def append_one_day(data: Path) -> None:
    """Append one synthetic trading day (each series continued at its last value: the cost does not depend on it)."""
    import numpy as np
    import pandas as pd

    from tasks.core.data.qlib_binary import read_calendar, write_calendar

    calendar = read_calendar(data)
    last = calendar[-1]
    new_day = last + pd.offsets.BDay(1)
    write_calendar(data, calendar.append(pd.DatetimeIndex([new_day])))
    old, new = f"{last:%Y-%m-%d}", f"{new_day:%Y-%m-%d}"
    for universe in (data / "instruments").glob("*.txt"):
        universe.write_text("".join(
            line.replace(f"\t{old}", f"\t{new}") + "\n" if line.endswith(old) else line + "\n"
            for line in universe.read_text().splitlines()))
    for path in (data / "features").glob("*/*.day.bin"):
        values = np.fromfile(path, dtype="<f4")
        if int(values[0]) + len(values) - 1 == len(calendar):  # the series reaches the last day
            with path.open("ab") as handle:
                values[-1:].astype("<f4").tofile(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--start", default="2007-01-01")
    parser.add_argument("--end", default="2020-09-30")
    parser.add_argument("--flow", action="store_true", help="run the retrain flow on a local Prefect server")
    parser.add_argument("--features-only", action="store_true",
                        help="time feature loading alone (off, cold, warm, +1 day) and the one-day predict loads")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.work, args.config)))
        return

    from tasks.core.data.synthetic import synthesize
    from tasks.core.features.cache import cache_usage, qlib_cache_dir, redis_reachable

    if not redis_reachable(REDIS_URL):
        raise SystemExit(f"Redis does not answer at {REDIS_URL}")
    work = Path(tempfile.mkdtemp(prefix="qmp-feature-cache-"))
    try:
        started = time.perf_counter()
        data = synthesize(work / "data", instruments=args.instruments, start=args.start, end=args.end, seed=7).out
        print(f"data: {args.instruments} instruments {args.start}..{args.end} in {time.perf_counter() - started:.0f} s")
        config = upstream_dates(work)
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "QMP_REDIS_URL": REDIS_URL,
               "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}"}
        server = None
        retrain = "load" if args.features_only else "steps"
        if args.flow:
            server, api, _ = start_prefect_server(work / "prefect", env)
            env["PREFECT_API_URL"] = api
            retrain = "flow"
        try:
            off, on = {**env, "QMP_FEATURE_CACHE": "off"}, {**env, "QMP_FEATURE_CACHE": "qlib"}
            results = {} if args.features_only else {"bare": run_child("bare", data, work, config, off)}
            results["off"] = run_child("load_off" if args.features_only else retrain, data, work, config, off)
            results["cold"] = run_child(retrain, data, work, config, on)
            results["warm"] = run_child(retrain, data, work, config, on)
            size = cache_usage(qlib_cache_dir(data, _settings()))
            append_one_day(data)
            results["+1 day"] = run_child(retrain, data, work, config, on)
            results["predict off"] = run_child("predict_off", data, work, config, off)
            shutil.rmtree(qlib_cache_dir(data, _settings()))
            results["predict skip (cold)"] = run_child("predict_skip", data, work, config, on)
            results["predict cold"] = run_child("predict_cold", data, work, config, on)
            results["predict warm"] = run_child("predict_warm", data, work, config, on)
        finally:
            if server is not None:
                server.terminate()
                server.wait()
        report(results, size.bytes, size.entries, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _settings() -> Any:
    from registry.settings import load_settings

    return load_settings(feature_cache="qlib", redis_url=REDIS_URL)


def report(results: dict[str, dict[str, Any]], size: int, entries: int, args: argparse.Namespace) -> None:
    what = ("feature loading alone" if args.features_only else "the retrain flow" if args.flow
            else "the retrain flow's Qlib steps")
    print(f"\n{args.instruments} instruments, {args.start}..{args.end}, {what}; "
          f"cache {entries} files, {size / 2**20:.0f} MiB")
    print("| run | wall (s) | feature loading (s) | share |\n|---|---:|---:|---:|")
    for name, r in results.items():
        share = r["features_s"] / r["run_s"] if r["run_s"] else 0.0
        print(f"| {name} | {r['run_s']:.1f} | {r['features_s']:.1f} | {share:.0%} |")
    off, warm, cold = results["off"], results["warm"], results["cold"]
    print("\ntargets:")
    print(f"- warm feature loading vs uncached: {off['features_s'] / warm['features_s']:.1f}x faster (target >= 5x)")
    print(f"- warm retrain vs today's: {off['run_s'] / warm['run_s']:.2f}x faster (target >= 1.4x)")
    print(f"- +1 day vs warm: {results['+1 day']['run_s'] / warm['run_s']:.2f}x (target <= 1.5x)")
    print(f"- cold vs uncached flow: {cold['run_s'] / off['run_s']:.2f}x (target <= 1.15x); "
          + (f"vs bare Qlib: {cold['run_s'] / results['bare']['run_s']:.2f}x" if "bare" in results else ""))


if __name__ == "__main__":
    main()
