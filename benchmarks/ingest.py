"""`qmp data ingest` timed as a user runs it (a whole process: start-up, reading, validation, commit, registry).

Cases on a synthetic directory of N instruments (default 300): one new day from a long Parquet table, one new day
from a folder of per-instrument CSV files holding each instrument's whole history (the import-csv layout), one
year of new days from a Parquet table, and `qmp data import-csv --append` of the same day. Medians of --runs.

    .venv/bin/python benchmarks/ingest.py --instruments 300 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core.data.qlib_binary import FIELDS, read_calendar, read_field  # noqa: E402
from tasks.core.data.synthetic import synthesize  # noqa: E402
from tasks.core.data.synthetic_feed import write_synthetic_feed  # noqa: E402

QMP = [sys.executable, "-c", "from deployments.cli import main; main()"]


def per_instrument_csvs(data: Path, feed: Path, folder: Path) -> None:
    """Each instrument's stored history plus the feed's rows, one CSV file each (the import-csv layout)."""
    calendar = read_calendar(data)
    new = pd.read_parquet(feed)
    folder.mkdir(parents=True)
    for directory in sorted((data / "features").iterdir()):
        symbol = directory.name.upper()
        stored = pd.DataFrame({f: read_field(data, symbol, f, calendar) for f in FIELDS if f != "change"})
        added = new.loc[new["instrument"] == symbol].set_index("date").drop(columns=["instrument"])
        frame = pd.concat([stored.dropna(subset=["close"]), added]).rename_axis("date").reset_index()
        frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(folder / f"{symbol}.csv", index=False)


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([*QMP, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"qmp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="qmp-bench-ingest-"))
    env = {**os.environ, "QMP_REGISTRY_DIR": str(scratch / "registry"), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    env.pop("QMP_DATABASE_URL", None)
    base = synthesize(scratch / "base", options.instruments, "2021-01-01", "2022-12-30", seed=3).out
    day, year = scratch / "day.parquet", scratch / "year.parquet"
    write_synthetic_feed(base, "2023-01-03", 3, day)
    write_synthetic_feed(base, "2023-12-31", 3, year)
    per_instrument_csvs(base, day, scratch / "csv")
    cases = {
        "one day, long Parquet table": ["data", "ingest", str(day), "--into"],
        "one day, per-instrument CSV files (whole history)": ["data", "ingest", str(scratch / "csv"), "--into"],
        "import-csv --append of that day": ["data", "import-csv", str(scratch / "csv"), "--append", "--out"],
        "one year, long Parquet table": ["data", "ingest", str(year), "--into"],
    }
    print(f"{options.instruments} instruments, {len(read_calendar(base))} stored days, {options.runs} runs")
    for label, args in cases.items():
        times = []
        for run in range(options.runs):
            target = scratch / f"run-{run}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(base, target)
            times.append(timed([*args, str(target)], env))
        print(f"| {label} | {statistics.median(times):.2f} s | min {min(times):.2f} s |")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
