"""A one-day prediction update: our predict function vs Qlib's OnlineToolR.update_online_pred vs a full recompute.

    .venv/bin/python benchmarks/predict_vs_qlib.py [--instruments 300] [--repeats 3] [--workdir DIR]

Set-up (not timed): synthetic data from 2014-01-01 to 2020-08-03, the LightGBM / Alpha158 example trained on
2014-2016 with the upstream test period 2017-01-01 .. 2020-08-01 as its test segment (so the recorder's
pred.pkl ends the day before the calendar's last day T), registered and promoted. Then each measurement
runs in a fresh Python process (peak memory is that process's own VmHWM), alternating, `--repeats` times:

- ours: `tasks.core.predictions.daily.predict_name` for day T without the flow: model load with checksum, the
  recorder's dataset state, features of T (and the look-back Qlib's expressions read), predict, the SQL
  write (`--recompute` of T, so each repeat does the same work) and the recorder's pred.pkl;
- qlib: `OnlineToolR(experiment).update_online_pred(from_date=T, to_date=T)` on the same recorder (it
  loads params.pkl and dataset, predicts and rewrites pred.pkl);
- full: the same predict function over the whole test period 2017-01-01 .. T (recompute).

Timings are split into Qlib init, model/dataset load, features, predict and store; imports are reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _bench import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "workflow_config_lightgbm_Alpha158.yaml"
NAME = "bench_predict_lgbm"
EXPERIMENT = "bench-predict"
DATA_START, DATA_END = "2014-01-01", "2020-08-03"
TEST_START = "2017-01-01"


def _env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "QMP_REGISTRY_DIR": str(workdir / "registry"), "QMP_PROVIDER_URI": str(workdir / "data"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def prepare(workdir: Path, instruments: int) -> dict[str, str]:
    """Synthesize, train, register, promote (in this process); returns the facts the runs need."""
    from qlib.workflow import R

    from registry.settings import load_settings
    from tasks.core import lifecycle
    from tasks.core.data.synthetic import synthesize
    from tasks.core.qlib import evaluation
    from tasks.core.qlib.training import prepare_dataset, train_model
    from tasks.core.qlib.workflow_config import load_workflow_config

    data = workdir / "data"
    started = time.perf_counter()
    synthesize(data, instruments=instruments, start=DATA_START, end=DATA_END, seed=5, overwrite=True)
    print(f"synthesized {instruments} instruments {DATA_START}..{DATA_END} in {time.perf_counter() - started:.0f} s")
    calendar = (data / "calendars" / "day.txt").read_text().split()
    last, before_last = calendar[-1], calendar[-2]
    raw = load_workflow_config(CONFIG, provider_uri=data).raw
    handler = raw["task"]["dataset"]["kwargs"]["handler"]["kwargs"]
    handler.update(start_time="2014-01-01", end_time=before_last, fit_start_time="2014-01-01",
                   fit_end_time="2015-12-31")
    raw["task"]["dataset"]["kwargs"]["segments"] = {
        "train": ["2014-03-01", "2015-12-31"], "valid": ["2016-01-01", "2016-12-31"], "test": [TEST_START, before_last],
    }
    cfg = load_workflow_config(raw)
    settings = load_settings()
    started = time.perf_counter()
    dataset = prepare_dataset(cfg, settings)
    result = train_model(cfg, dataset, EXPERIMENT, settings=settings)
    pred = evaluation.predict(result.model, dataset)
    recorder = R.get_recorder(recorder_id=result.recorder_id, experiment_name=EXPERIMENT)
    recorder.save_objects(**{"pred.pkl": pred})
    print(f"trained in {time.perf_counter() - started:.0f} s (recorder {result.recorder_id})")
    metadata = lifecycle.metadata_for(NAME, cfg, {"ic_mean": 0.1}, experiment_name=EXPERIMENT,
                                       recorder_id=result.recorder_id)
    info = lifecycle.register_trained(result.model, metadata, settings, flow_run_id=None)
    lifecycle.promote(info.model_id, settings, actor="bench", reason="benchmark")
    (workdir / "pred_base.pkl").write_bytes(pickle.dumps(pred))
    return {"last": last, "recorder_id": result.recorder_id, "model_id": info.model_id}


def _reset_pred(facts: dict[str, str], workdir: Path) -> None:
    """Put the recorder's pred.pkl back to its state before day T (so each run updates the same day)."""
    from qlib.workflow import R

    recorder = R.get_recorder(recorder_id=facts["recorder_id"], experiment_name=EXPERIMENT)
    recorder.save_objects(**{"pred.pkl": pickle.loads((workdir / "pred_base.pkl").read_bytes())})


def run_side(side: str, workdir: Path, facts: dict[str, str]) -> dict[str, float]:
    """One measurement in this (fresh) process."""
    started = time.perf_counter()
    import qlib  # noqa: F401

    from tasks.core.predictions.daily import predict_name
    from tasks.core.qlib.session import init_qlib

    imports = time.perf_counter() - started
    from registry.settings import load_settings

    settings = load_settings()
    last = date.fromisoformat(facts["last"])
    out: dict[str, float] = {"imports": imports}
    if side == "qlib":
        from qlib.workflow.online.utils import OnlineToolR

        t0 = time.perf_counter()
        init_qlib(workdir / "data", settings=settings)
        out["qlib_init"] = time.perf_counter() - t0
        _reset_pred(facts, workdir)
        t0 = time.perf_counter()
        OnlineToolR(EXPERIMENT).update_online_pred(to_date=facts["last"], from_date=facts["last"])
        out["update"] = time.perf_counter() - t0
        out["total"] = out["qlib_init"] + out["update"]
    else:
        if side == "ours":
            init_qlib(workdir / "data", settings=settings)  # pred.pkl reset needs the recorder; not timed
            _reset_pred(facts, workdir)
        first = last if side == "ours" else date.fromisoformat(TEST_START)
        t0 = time.perf_counter()
        outcome = predict_name(NAME, start=first, end=last, recompute=True, settings=settings)
        out["total"] = time.perf_counter() - t0
        out.update(outcome.timings)
        out["rows"] = float(sum(d.scored for d in outcome.days))
    out["peak_rss_mb"] = peak_rss_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--sides", default="ours,qlib,full", help="Which measurements, e.g. ours,qlib (no full recompute).")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "FACTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="qmp-bench-predict-"))).resolve()
    if args.child:
        print("RESULT " + json.dumps(run_side(args.child[0], workdir, json.loads(args.child[1]))))
        return
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.update(_env(workdir))
    facts_file = workdir / "facts.json"
    if facts_file.exists():
        facts = json.loads(facts_file.read_text())
    else:
        facts = prepare(workdir, args.instruments)
        facts_file.write_text(json.dumps(facts))
    results: dict[str, list[dict[str, float]]] = {side: [] for side in args.sides.split(",")}
    for _ in range(args.repeats):
        for side in results:
            proc = subprocess.run(
                [sys.executable, __file__, "--workdir", str(workdir), "--child", side, json.dumps(facts)],
                env=_env(workdir), capture_output=True, text=True, check=False,
            )
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            results[side].append(json.loads(line[len("RESULT "):]))
            with (workdir / "results.jsonl").open("a") as log:  # kept when a long run is interrupted
                log.write(json.dumps({"side": side, **results[side][-1]}) + "\n")
    print(f"\n{args.instruments} instruments, day T = {facts['last']}, {args.repeats} repeats (median; fresh process each)")
    keys = ["total", "qlib_init", "load_model", "load_dataset_state", "features", "predict", "store", "recorder_pred",
            "update", "imports", "rows", "peak_rss_mb"]
    print(f"{'':22}" + "".join(f"{side:>12}" for side in results))
    for key in keys:
        cells = []
        for side in results:
            values = [r[key] for r in results[side] if key in r]
            cells.append(f"{statistics.median(values):12.3f}" if values else f"{'-':>12}")
        print(f"{key:22}" + "".join(cells))
    total = {side: statistics.median(r["total"] for r in runs) for side, runs in results.items() if runs}
    if "ours" in total and "qlib" in total:
        print(f"\nours / qlib update: {total['ours'] / total['qlib']:.2f}x (target <= 1.2x)")
    if "ours" in total and "full" in total:
        print(f"full recompute / ours: {total['full'] / total['ours']:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
