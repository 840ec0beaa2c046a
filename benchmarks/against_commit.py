"""A benchmark script of this tree against the same script of an older commit, in one run: no regression?

Each side runs the whole benchmark script as a fresh process with the same interpreter and packages (the
older commit's files are unpacked with `git archive`; PYTHONPATH puts each side's code first), interleaved
with rotating order so both see the same background load, `--runs` times. Every numeric cell of the
Markdown table the script writes (`--output`) is reduced to its median over the runs and printed beside
the other side's with the ratio this tree / older commit (a time column: above 1 is slower).

    .venv/bin/python benchmarks/against_commit.py --old 9cdfe99 -- registry_vs_mlflow.py --quick
    .venv/bin/python benchmarks/against_commit.py --old 9cdfe99 -- pipeline_vs_qlib.py --repeats 1
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cli_startup import ROOT, _unpack

NUMBER = re.compile(r"^[~≈]?\s*(-?\d+(?:\.\d+)?)\s*(?:ms|s|x|%|MiB|GiB|MB|GB)?$")


def _cells(table: str) -> dict[tuple[str, str], float]:
    """{(row label, column header): value} of every numeric cell of the Markdown tables in ``table``."""
    cells: dict[tuple[str, str], float] = {}
    header: list[str] = []
    for line in table.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        parts = [p.strip().strip("*") for p in line.strip().strip("|").split("|")]
        if all(set(p) <= set("-: ") for p in parts):
            continue
        if not header:
            header = parts
            continue
        values = [NUMBER.match(text.replace(",", "")) for text in parts]
        first = next((i for i, match in enumerate(values) if match and i > 0), len(parts))
        label = " / ".join(parts[:first])  # the leading cells that name the row (e.g. size and operation)
        for column, match in zip(header[first:], values[first:], strict=False):
            if match:
                cells[(label, column)] = float(match.group(1))
    return cells


def _run(code_root: Path, script: list[str], output: Path) -> dict[tuple[str, str], float]:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    command = [sys.executable, str(code_root / "benchmarks" / script[0]), *script[1:], "--output", str(output)]
    done = subprocess.run(command, env=env, cwd=code_root, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{code_root}: {' '.join(script)} failed:\n{done.stderr[-3000:]}")
    return _cells(output.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="9cdfe99", help="The commit to compare with.")
    parser.add_argument("--runs", type=int, default=3, help="Runs of the script per side (medians reported).")
    parser.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT.py [its arguments]")
    args = parser.parse_args()
    script = [a for a in args.script if a != "--"]
    if not script:
        parser.error("name the benchmark script after --")
    with tempfile.TemporaryDirectory(prefix="qmp-against-") as tmp:
        scratch = Path(tmp)
        sides = {"this tree": ROOT, args.old: scratch / "old"}
        _unpack(args.old, sides[args.old])
        runs: dict[str, list[dict[tuple[str, str], float]]] = {side: [] for side in sides}
        names = list(sides)
        for i in range(args.runs):
            for side in names[i % 2:] + names[: i % 2]:
                runs[side].append(_run(sides[side], script, scratch / f"out-{i}-{names.index(side)}.md"))
                print(f"run {i + 1}/{args.runs} of {side} done", file=sys.stderr, flush=True)
    print(f"{' '.join(script)}: medians of {args.runs} runs per side, this tree vs {args.old}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"| row | column | this tree | {args.old} | ratio |\n|---|---|---|---|---|")
    for key in runs[names[0]][0]:
        values = [[run[key] for run in runs[side] if key in run] for side in names]
        if not all(values):
            continue
        new, old = (statistics.median(v) for v in values)
        ratio = f"{new / old:.2f}" if old else "-"
        print(f"| {key[0]} | {key[1]} | {new:g} | {old:g} | {ratio} |")


if __name__ == "__main__":
    main()
