"""`qmp --help` and `qmp models list` (empty registry), whole process, this tree vs an older commit.

The older commit's files are unpacked with `git archive` into a temporary directory and run with the same
interpreter and packages (PYTHONPATH puts its code first); each side runs in a fresh process, interleaved
with rotating order so both see the same background load, and the median wall time is reported.

    .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--old 9cdfe99]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "import sys; sys.argv[0] = 'qmp'; from deployments.cli import main; main()"
COMMANDS = {"qmp --help": ["--help"], "qmp models list": ["models", "list"]}


def _unpack(commit: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def _run(code_root: Path, args: list[str], registry_dir: Path, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child process)."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "QMP_REGISTRY_DIR": str(registry_dir), "COLUMNS": "120"}
    env.pop("QMP_DATABASE_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{code_root}: qmp {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Timed runs per side and command (after one warm-up).")
    parser.add_argument("--old", default="9cdfe99", help="The commit to compare with.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qmp-cli-bench-") as tmp:
        scratch = Path(tmp)
        old_root = scratch / "old"
        _unpack(args.old, old_root)
        sides = {"this tree": ROOT, args.old: old_root}
        cwd = scratch / "cwd"
        cwd.mkdir()
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
              f"{args.runs} runs per cell (medians, seconds)")
        print(f"{'command':<18} {'wall: this tree':>16} {args.old:>8} {'speed-up':>9}   "
              f"{'CPU: this tree':>15} {args.old:>8} {'speed-up':>9}")
        for label, command in COMMANDS.items():
            times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
            registries = {side: scratch / f"registry-{i}-{label.replace(' ', '_')}" for i, side in enumerate(sides)}
            for side, root in sides.items():  # warm-up: bytecode caches, the empty registry's schema
                _run(root, command, registries[side], cwd)
            names = list(sides)
            for i in range(args.runs):
                for side in names[i % 2:] + names[: i % 2]:
                    times[side].append(_run(sides[side], command, registries[side], cwd))
            new, old = (statistics.median(wall for wall, _ in times[side]) for side in names)
            new_cpu, old_cpu = (statistics.median(cpu for _, cpu in times[side]) for side in names)
            print(f"{label:<18} {new:>16.2f} {old:>8.2f} {old / new:>8.1f}x   "
                  f"{new_cpu:>15.2f} {old_cpu:>8.2f} {old_cpu / new_cpu:>8.1f}x")


if __name__ == "__main__":
    main()
