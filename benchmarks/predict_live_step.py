"""The predict flow's one-day run with and without its live step (live metrics of the newly scorable day).

    .venv/bin/python benchmarks/predict_live_step.py [--instruments 300] [--repeats 2] [--workdir DIR]

Set-up (not timed) as `predict_vs_qlib.py`: synthetic data, the LightGBM / Alpha158 example trained, registered
and promoted; then the days T-5..T-1 predicted and their live metrics stored once. Each measurement runs in a
fresh process, alternating:

- without: `predict_name` for day T (`--recompute` of T, so each repeat does the same work);
- with: the same, then the live step (`update_live_metrics`) after the live metrics of day T-h were deleted,
  so it reads that day's label and stores one day, as a daily run does when day T arrives.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _bench import peak_rss_mib
from predict_vs_qlib import NAME, _env, prepare


def backfill(facts: dict[str, str]) -> None:
    """Predict T-5..T-1 once and store their live metrics (not timed)."""
    from qlib.data import D

    from registry.settings import load_settings
    from tasks.core.data.version import data_version
    from tasks.core.lifecycle import open_registry
    from tasks.core.predictions.daily import predict_name
    from tasks.core.predictions.live import update_live_metrics

    settings = load_settings()
    registry = open_registry(settings)
    predict_name(NAME, start=date.fromisoformat(facts["last"]), end=date.fromisoformat(facts["last"]),
                 recompute=True, settings=settings)
    calendar = D.calendar(freq="day")
    predict_name(NAME, start=calendar[-6].date(), end=calendar[-2].date(), recompute=True, settings=settings)
    update_live_metrics(registry, NAME, data_version=str(data_version(settings.provider_uri or "")))


def run_side(side: str, facts: dict[str, str]) -> dict[str, float]:
    """One measurement in this (fresh) process."""
    from registry.settings import load_settings
    from registry.store import live_metrics
    from tasks.core.data.version import data_version
    from tasks.core.lifecycle import open_registry
    from tasks.core.predictions.daily import predict_name
    from tasks.core.predictions.live import update_live_metrics

    settings = load_settings()
    registry = open_registry(settings)
    last = date.fromisoformat(facts["last"])
    t0 = time.perf_counter()
    predict_name(NAME, start=last, end=last, recompute=True, settings=settings)
    out = {"predict": time.perf_counter() - t0}
    if side == "with":
        scorable = registry.live_metrics(NAME)[-1].trading_date
        with registry.db.sessions.begin() as session:
            live_metrics.delete_days(session, NAME, scorable, scorable)
        t0 = time.perf_counter()
        outcome = update_live_metrics(registry, NAME, data_version=str(data_version(settings.provider_uri or "")))
        out["live"] = time.perf_counter() - t0
        out["live_days"] = float(len(outcome.written_days))
    out["total"] = out["predict"] + out.get("live", 0.0)
    out["peak_rss_mb"] = peak_rss_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "FACTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="qmp-bench-live-"))).resolve()
    if args.child:
        print("RESULT " + json.dumps(run_side(args.child[0], json.loads(args.child[1]))))
        return
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.update(_env(workdir))
    facts_file = workdir / "facts.json"
    if facts_file.exists():
        facts = json.loads(facts_file.read_text())
    else:
        facts = prepare(workdir, args.instruments)
        backfill(facts)
        facts_file.write_text(json.dumps(facts))
    results: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    for _ in range(args.repeats):
        for side in results:
            proc = subprocess.run([sys.executable, __file__, "--workdir", str(workdir), "--child", side,
                                   json.dumps(facts)], env=_env(workdir), capture_output=True, text=True, check=False)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            results[side].append(json.loads(line[len("RESULT "):]))
    print(f"\n{args.instruments} instruments, day T = {facts['last']}, {args.repeats} repeats (median)")
    for key in ("predict", "live", "live_days", "total", "peak_rss_mb"):
        cells = [statistics.median(v) if (v := [r[key] for r in runs if key in r]) else None
                 for runs in results.values()]
        print(f"{key:14}" + "".join(f"{c:12.3f}" if c is not None else f"{'-':>12}" for c in cells))
    without = statistics.median(r["total"] for r in results["without"])
    with_live = statistics.median(r["total"] for r in results["with"])
    print(f"\nwith / without: {with_live / without:.3f}x (target <= 1.10x)")


if __name__ == "__main__":
    main()
