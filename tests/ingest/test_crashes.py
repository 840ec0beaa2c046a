"""A SIGKILL at every step of an ingest (appends, and appends with applied corrections) leaves a directory Qlib
reads as exactly the old rows or exactly the new ones; the re-run's recovery completes the ingest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from qlib.data import D

from registry.settings import Settings, load_settings
from tasks.core.data.ingest.operation import IngestOptions, ingest
from tasks.core.data.ingest.sources import Source
from tasks.core.qlib.session import init_qlib
from tests.ingest.ingest_data import HISTORY, STORED_DAYS, SYMBOLS, stored_dir, write_table

FIELDS = ["$open", "$high", "$low", "$close", "$volume", "$vwap", "$factor", "$change"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def qlib_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(registry_dir=tmp_path_factory.mktemp("registry"))


def qlib_view(out: Path, settings: Settings) -> tuple[list[str], pd.DataFrame, list[str]]:
    """What Qlib reads from ``out``: the calendar, every field of every instrument, the 'all' universe."""
    from qlib.data.cache import H

    init_qlib(out, settings=settings)
    H.clear()
    calendar = [f"{day:%Y-%m-%d}" for day in D.calendar()]
    features = D.features(list(SYMBOLS), FIELDS).sort_index()
    members = sorted(D.list_instruments(D.instruments("all"), as_list=True))
    return calendar, features, members


def source_rows(corrections: str) -> pd.DataFrame:
    rows = HISTORY.copy()
    if corrections == "apply":
        fix = (rows["instrument"] == "SZ300750") & (rows["date"] == STORED_DAYS[1])
        rows.loc[fix, "close"] = rows.loc[fix, "high"]
    listing = rows.loc[(rows["instrument"] == "SH600000") & (rows["date"] > STORED_DAYS[-1])]
    return pd.concat([rows, listing.assign(instrument="SH688001")])  # a new listing too


def run_child(out: Path, table: Path, step: int, corrections: str) -> int:
    command = [sys.executable, "-m", "tests.ingest.crash_child", str(out), str(table), str(step), corrections]
    return subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120).returncode


@pytest.mark.parametrize("corrections", ["refuse", "apply"])
def test_a_kill_at_every_step_leaves_old_or_new_rows_and_a_rerun_completes(
    tmp_path: Path, qlib_settings: Settings, corrections: str
) -> None:
    base = stored_dir(tmp_path / "base")
    table = write_table(source_rows(corrections), tmp_path / "rows.csv")
    old = qlib_view(base, qlib_settings)
    finished = tmp_path / "finished"
    shutil.copytree(base, finished)
    ingest(Source("table", str(table)), finished, IngestOptions(corrections=corrections))
    new = qlib_view(finished, qlib_settings)
    killed = []
    for step in range(1, 60):
        out = tmp_path / f"killed-{step}"
        shutil.copytree(base, out)
        code = run_child(out, table, step, corrections)
        if code == 0:
            break
        assert code == -9, f"step {step}: the child failed with exit code {code}"
        killed.append(out)
    assert len(killed) >= 8, "the ingest has fewer steps than expected: the kills did not reach it"
    states = []
    for out in killed:
        seen = qlib_view(out, qlib_settings)
        states.append("old" if same(seen, old) else "new" if same(seen, new) else "mixed")
        ingest(Source("table", str(table)), out, IngestOptions(corrections=corrections))
        assert same(qlib_view(out, qlib_settings), new), f"{out.name}: the re-run did not complete the ingest"
    committed = next(number for number, state in enumerate(states) if state != "old")
    assert "old" not in states[committed:], states  # before the commit point Qlib reads the old rows, then never
    if corrections == "refuse":  # appends: the new rows from the calendar's rename on
        assert set(states[committed:]) == {"new"}, states
    else:  # corrected files are renamed in after the commit point: the re-run's recovery finishes them
        assert set(states[committed:]) <= {"new", "mixed"}, states


def same(left: tuple[list[str], pd.DataFrame, list[str]], right: tuple[list[str], pd.DataFrame, list[str]]) -> bool:
    return left[0] == right[0] and left[2] == right[2] and left[1].equals(right[1])
