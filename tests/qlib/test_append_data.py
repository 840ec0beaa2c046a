"""Appending trading days to a Qlib directory (synthetic and CSV) leaves every stored byte unchanged."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.data import D
from typer.testing import CliRunner

from deployments.cli.data import data_app
from registry import ModelRegistry
from registry.settings import Settings
from tasks.core.data.csv_import import import_csv
from tasks.core.data.ingest.record import data_dir_key
from tasks.core.data.qlib_binary import read_calendar, read_universe
from tasks.core.data.synthetic import append_synthetic, synthesize
from tasks.core.data.version import data_version
from tasks.core.qlib.session import init_qlib
from tests.cli.test_qmp_models import qmp
from tests.qlib.test_csv_import import ROWS, write_csvs


def snapshot(root: Path) -> dict[str, bytes]:
    """Every calendar and feature file's bytes (instrument files change: members' end dates move)."""
    files = [*root.glob("calendars/*.txt"), *root.glob("features/*/*.bin")]
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def assert_prefixes_unchanged(before: dict[str, bytes], root: Path) -> None:
    for name, old in before.items():
        new = (root / name).read_bytes()
        assert len(new) >= len(old), name
        assert hashlib.sha256(new[: len(old)]).hexdigest() == hashlib.sha256(old).hexdigest(), name


@pytest.fixture
def small_synth(tmp_path: Path) -> Path:
    return synthesize(tmp_path / "data", instruments=6, start="2022-01-01", end="2022-06-30", seed=5).out


def test_synth_append_keeps_history_and_adds_readable_days(
    small_synth: Path, qlib_settings: Settings
) -> None:
    before, version = snapshot(small_synth), data_version(small_synth)
    old_calendar = read_calendar(small_synth)
    report = append_synthetic(small_synth, "2022-08-31", seed=5)
    assert_prefixes_unchanged(before, small_synth)
    calendar = read_calendar(small_synth)
    assert list(calendar[: len(old_calendar)]) == list(old_calendar)
    assert (
        calendar[-1] <= pd.Timestamp("2022-08-31") and len(calendar) - len(old_calendar) == report.days > 35
    )
    assert data_version(small_synth).calendar_end == calendar[-1].date() != version.calendar_end
    assert read_universe(small_synth, "csi300")  # members still listed
    init_qlib(small_synth, settings=qlib_settings)
    live = [s for s, span in read_universe(small_synth, "all").items() if span.end == calendar[-1]]
    assert len(live) == report.instruments > 0
    frame = D.features(live, ["$close", "$change"], start_time=old_calendar[-1], end_time=calendar[-1])
    closes = frame["$close"].unstack("instrument")
    assert closes.iloc[1:].notna().mean().mean() > 0.95
    first_new = frame.xs(calendar[len(old_calendar)], level="datetime")
    previous = closes.iloc[0]
    expected = (first_new["$close"] / previous - 1).dropna()
    np.testing.assert_allclose(first_new["$change"].loc[expected.index], expected, rtol=1e-5)


def test_synth_append_is_deterministic_and_refuses_past_dates(small_synth: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(small_synth, twin)
    append_synthetic(small_synth, "2022-07-29", seed=1)
    append_synthetic(twin, "2022-07-29", seed=1)
    assert snapshot(small_synth) == snapshot(twin)
    with pytest.raises(ValueError, match="already ends 2022-07-29; nothing to append until 2022-07-01"):
        append_synthetic(small_synth, "2022-07-01")


def test_cli_synth_append_until_is_an_ingest_recorded_as_a_data_version(
    small_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    before = snapshot(small_synth)
    code, out, err = qmp(
        "data", "synth", "--append-until", "2022-07-15", str(small_synth), capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert "appended" in out and f"data version {data_version(small_synth)}" in out
    assert_prefixes_unchanged(before, small_synth)
    records = ModelRegistry(tmp_path / "registry").data_versions(data_dir_key(small_synth))
    assert len(records) == 1 and records[0].source.startswith(f"synthetic:{small_synth} until 2022-07-15")
    assert records[0].calendar_end == read_calendar(small_synth)[-1].date() and records[0].days_added == 11
    assert records[0].validation["checks"]["high below low"]["count"] == 0
    code, out, err = qmp(
        "data", "synth", "--append-until", "2022-07-15", str(small_synth), capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "nothing to append" in err


NEW_ROWS = {
    "SH600000": [*ROWS["SH600000"], "2022-01-11,10.0,10.3,9.9,10.3,800,10.2,1.1"],
    "SZ000001": [
        "2022-01-11,19.8,20.0,19.6,19.9,300,19.8,2.0",
        "2022-01-12,19.9,20.5,19.9,20.4,500,20.2,2.0",
    ],
    "SZ000002": ["2022-01-12,5.0,5.1,4.9,5.05,100,5.0,1.0"],
    "SH000300": ["2022-01-11,4000,4020,3990,4011,1e9,4000,1", "2022-01-12,4000,4020,3990,4012,1e9,4000,1"],
}


def test_csv_append_adds_new_days_and_instruments_only(tmp_path: Path, qlib_settings: Settings) -> None:
    out = tmp_path / "qlib"
    import_csv(write_csvs(tmp_path / "csv", ROWS), out)
    before = snapshot(out)
    report = import_csv(write_csvs(tmp_path / "more", NEW_ROWS), out, append=True)
    assert_prefixes_unchanged(before, out)
    assert (report.days, report.start, report.end) == (2, "2022-01-11", "2022-01-12")
    assert report.warnings == []  # the stored rows offered again are unchanged: not corrections
    members = read_universe(out, "csi300")
    assert sorted(members) == ["SH600000", "SZ000001", "SZ000002"]
    assert members["SZ000001"].end == pd.Timestamp("2022-01-12")
    assert "SH000300" not in read_universe(out, "all")
    init_qlib(out, settings=qlib_settings)
    got = D.features(["SH600000"], ["$close", "$change"]).droplevel("instrument")
    assert got.index[-1] == pd.Timestamp("2022-01-11")  # no row on the 12th: its series ends a day earlier
    np.testing.assert_allclose(got.loc["2022-01-11", "$change"], 10.3 / 10.0 - 1, rtol=1e-6)


def test_cli_import_csv_append_refuses_when_nothing_is_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_csvs(tmp_path / "csv", ROWS)
    assert CliRunner().invoke(data_app, ["import-csv", str(src), "--out", str(tmp_path / "q")]).exit_code == 0
    before = snapshot(tmp_path / "q")
    code, _, err = qmp(
        "data", "import-csv", str(src), "--out", str(tmp_path / "q"), "--append", capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 1
    assert "no rows after 2022-01-10" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path / "q") == before
