"""What a drift policy would have earned (issue 34 §5): `qmp rolling --trigger drift` beside the fixed step-20 replay.

    .venv/bin/python benchmarks/drift_replay.py                          # both data sets, benchmark size
    .venv/bin/python benchmarks/drift_replay.py --data planted --test-end 2018-06-30   # reduced

The configuration and size are the rolling benchmark's (`benchmarks/rolling_vs_qlib.py`): Qlib's rolling baseline
(examples/benchmarks_dynamic/baseline, ridge on Alpha158, step 20, horizon 20) on 60 synthetic instruments,
2007-01-01..2020-09-30. Two data sets:

- `default`: `qmp data synth` as it ships (the planted alpha the same throughout);
- `planted`: the alpha at strength 3 up to `--flip` (2018-12-31), then at -3 (`append_synthetic`), a regime
  change in the middle of the 2017..2020 test period.

Each data set gets a fresh registry and one `qmp rolling --trigger drift` (its default rule: 20 live days,
2 standard errors, 10 days before a verdict; each retrain evaluated on 20 days) against a local Prefect
server; the command runs the fixed step-20 replay of the same period too. The figures come from the two
replay records the command writes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
CONFIG = ROOT / "examples" / "benchmarks_dynamic" / "baseline" / "workflow_config_linear_Alpha158.yaml"


def make_data(out: Path, which: str, args: argparse.Namespace) -> Path:
    """The data set ``which`` (default or planted) in ``out``, unless it is there already."""
    from tasks.core.data.synthetic import append_synthetic, synthesize

    if (out / "calendars" / "day.txt").is_file():
        return out
    print(f"synthesizing {which}: {args.instruments} instruments into {out}", flush=True)
    if which == "default":
        synthesize(out, instruments=args.instruments, start=args.start, end=args.end, seed=7)
    else:
        synthesize(out, instruments=args.instruments, start=args.start, end=args.flip, seed=7, alpha_strength=3.0)
        append_synthetic(out, args.end, seed=8, alpha_strength=-3.0)
    return out


def write_config(data: Path, path: Path, test_end: str | None) -> Path:
    import yaml

    raw = yaml.safe_load(CONFIG.read_text())
    raw["qlib_init"]["provider_uri"] = str(data)
    if test_end:
        raw["task"]["dataset"]["kwargs"]["segments"]["test"][1] = test_end
        raw["task"]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"] = test_end
        raw["port_analysis_config"]["backtest"]["end_time"] = test_end
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def summary(registry_dir: Path) -> dict[str, Any]:
    """The drift record and the fixed-step record the command wrote, reduced to the compared figures."""
    records = [json.loads(p.read_text()) for p in (registry_dir / "replays").glob("*/replay.json")]
    drift = next(r for r in records if "fixed_replay_id" in r)
    fixed = next(r for r in records if r["replay_id"] == drift["fixed_replay_id"])

    def figures(record: dict[str, Any], models: int) -> dict[str, Any]:
        c = record["combined"]
        return {"models": models, "retrains": models - 1, "ic": c["ic_mean"], "rank_ic": c["rank_ic"],
                "icir": c["icir"], "annualized_return": c["annualized_return"],
                "information_ratio": c["information_ratio"], "max_drawdown": c["max_drawdown"], "days": c["test_days"]}

    windows = [{"live": w["live"], "test": w["segments"]["test"], "expectation": (w["expectation"] or {}).get("mean"),
                "live_ic": w["live_ic"], "drift": w["drift_reason"]} for w in drift["windows"]]
    return {"drift": figures(drift, len(drift["windows"])), "fixed": figures(fixed, len(fixed["windows"])),
            "drift_windows": windows}


def run(which: str, work: Path, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """One `qmp rolling --trigger drift` on data set ``which``; its figures and wall time."""
    folder = work / which
    folder.mkdir(parents=True, exist_ok=True)
    data = make_data(work / f"data-{which}", which, args)
    config = write_config(data, folder / "workflow.yaml", args.test_end)
    registry = folder / "registry"
    command = [str(Path(sys.executable).parent / "qmp"), "rolling", "--config", str(config), "--model-name",
               f"linear_{which}", "--trigger", "drift"]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, env={**env, "QMP_REGISTRY_DIR": str(registry), "COLUMNS": "200"},
                          capture_output=True, text=True, cwd=folder)
    wall = time.perf_counter() - started
    (folder / "qmp.out").write_text(done.stdout + done.stderr)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"{which}: qmp rolling failed with exit code {done.returncode}")
    print(done.stdout, flush=True)
    return {**summary(registry), "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="planted,default", help="Which data sets, in order: planted and/or default.")
    parser.add_argument("--instruments", type=int, default=60)
    parser.add_argument("--start", default="2007-01-01")
    parser.add_argument("--end", default="2020-09-30")
    parser.add_argument("--flip", default="2018-12-31", help="planted: the last day of the alpha's first sign.")
    parser.add_argument("--test-end", default=None, help="Shorter test period for a reduced run.")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    from rolling_vs_qlib import start_prefect_server

    work = args.work or Path(tempfile.mkdtemp(prefix="qmp-drift-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QMP_", "PREFECT_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    server, api, server_seconds = start_prefect_server(work / "prefect", env)
    env["PREFECT_API_URL"] = api
    print(f"Prefect server up in {server_seconds:.1f} s; work dir {work}", flush=True)
    results: dict[str, Any] = {}
    try:
        for which in args.data.split(","):
            results[which] = run(which, work, env, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    for which, r in results.items():
        for policy in ("drift", "fixed"):
            f = r[policy]
            print(f"{which:>8} {policy:>5}: {f['retrains']} retrains, combined IC {f['ic']:.4f}, rank IC {f['rank_ic']:.4f}, "
                  f"annualized return {f['annualized_return']:.4f}, IR {f['information_ratio']:.3f}, "
                  f"max drawdown {f['max_drawdown']:.4f}, {f['days']:.0f} days", flush=True)
        print(f"{which:>8} wall {r['wall']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
