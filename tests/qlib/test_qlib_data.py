"""Synthetic data and the binary writer: Qlib reads back exactly what was written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.data import D

from registry.settings import Settings
from tasks.core.data.qlib_binary import FIELDS, QlibDataError, read_universe, validate_qlib_dir
from tasks.core.data.synthetic import SynthReport, generate_market, synthesize
from tasks.core.qlib.session import init_qlib

from .conftest import INSTRUMENTS, SEED


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_qlib_returns_exactly_the_values_written(qlib_on_data: Path, synth_report: SynthReport) -> None:
    market = generate_market(INSTRUMENTS, "2021-01-01", "2022-12-31", SEED)
    symbols = list(market.frames)[:6]
    fields = [f"${name}" for name in FIELDS]
    read = D.features(symbols, fields, start_time=market.calendar[0], end_time=market.calendar[-1])
    for symbol in symbols:
        written = market.frames[symbol][list(FIELDS)].astype(np.float32)
        got = read.xs(symbol, level="instrument")
        got.columns = list(FIELDS)
        expected = written.loc[got.index[0] : got.index[-1]]
        assert len(got) > 100
        pd.testing.assert_frame_equal(got, expected, check_names=False, check_freq=False)


def test_benchmark_series_is_readable_and_outside_the_universes(qlib_on_data: Path) -> None:
    bench = D.features(["SH000300"], ["$close", "$change"])
    assert bench["$close"].notna().all()
    universe = D.list_instruments(D.instruments("csi300"), as_list=True)
    assert "SH000300" not in universe
    assert len(universe) == INSTRUMENTS


def test_synthetic_data_has_suspensions_listings_delistings_and_holidays(synth_report: SynthReport) -> None:
    assert synth_report.suspended_days > 0
    assert synth_report.late_listings > 0
    assert synth_report.delistings > 0
    assert synth_report.holidays > 0
    assert synth_report.days == len(pd.bdate_range("2021-01-01", "2022-12-31")) - synth_report.holidays


def test_index_universe_has_late_joiners_and_drops_stocks_before_they_delist(qlib_data: Path) -> None:
    everything = read_universe(qlib_data, "all")
    index = read_universe(qlib_data, "csi300")
    assert any(index[s].start > everything[s].start for s in index)
    delisted = [s for s, span in everything.items() if span.end < max(v.end for v in everything.values())]
    assert delisted
    assert all(index[s].end < everything[s].end for s in delisted)


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synthesize(tmp_path / name, instruments=5, start="2022-01-01", end="2022-06-30", seed=seed)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_writing_over_existing_data_needs_overwrite(tmp_path: Path) -> None:
    synthesize(tmp_path, instruments=3, start="2022-01-01", end="2022-06-30")
    with pytest.raises(QlibDataError, match="already holds Qlib data"):
        synthesize(tmp_path, instruments=3, start="2022-01-01", end="2022-06-30")
    synthesize(tmp_path, instruments=4, start="2022-01-01", end="2022-06-30", overwrite=True)
    assert len(read_universe(tmp_path, "all")) == 4


def test_reinitialising_on_another_directory_switches_the_data(
    tmp_path: Path, qlib_data: Path, qlib_settings: Settings
) -> None:
    synthesize(tmp_path, instruments=3, start="2022-01-01", end="2022-06-30")
    init_qlib(tmp_path, settings=qlib_settings)
    assert D.calendar()[0] == pd.Timestamp("2022-01-03")
    init_qlib(qlib_data, settings=qlib_settings)
    assert D.calendar()[0] == pd.Timestamp("2021-01-01")


@pytest.fixture
def small_dir(tmp_path: Path) -> Path:
    synthesize(tmp_path / "d", instruments=3, start="2022-01-01", end="2022-06-30", seed=1)
    return tmp_path / "d"


def _first_feature_dir(directory: Path) -> Path:
    return sorted(p for p in (directory / "features").iterdir() if p.name != "sh000300")[0]


def test_validator_rejects_an_upper_case_feature_directory(small_dir: Path) -> None:
    folder = _first_feature_dir(small_dir)
    folder.rename(folder.with_name(folder.name.upper()))
    with pytest.raises(QlibDataError, match="lower-case"):
        validate_qlib_dir(small_dir)


def test_validator_rejects_a_missing_field_file(small_dir: Path) -> None:
    victim = _first_feature_dir(small_dir) / "vwap.day.bin"
    victim.unlink()
    with pytest.raises(QlibDataError, match=f"{victim}: field file missing"):
        validate_qlib_dir(small_dir)


def test_validator_rejects_float64_bins(small_dir: Path) -> None:
    victim = _first_feature_dir(small_dir) / "close.day.bin"
    values = np.frombuffer(victim.read_bytes(), dtype="<f4").astype("<f8")
    victim.write_bytes(values.tobytes())
    with pytest.raises(QlibDataError, match=str(victim)):
        validate_qlib_dir(small_dir)


def test_validator_rejects_an_unsorted_calendar(small_dir: Path) -> None:
    calendar = small_dir / "calendars" / "day.txt"
    lines = calendar.read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    calendar.write_text("\n".join(lines) + "\n")
    with pytest.raises(QlibDataError, match="line 5: dates not strictly increasing"):
        validate_qlib_dir(small_dir)


def test_validator_rejects_a_series_running_past_the_calendar(small_dir: Path) -> None:
    victim = _first_feature_dir(small_dir) / "open.day.bin"
    days = len((small_dir / "calendars" / "day.txt").read_text().split())
    victim.write_bytes(victim.read_bytes() + np.ones(days, dtype="<f4").tobytes())
    with pytest.raises(QlibDataError, match="run past the calendar end"):
        validate_qlib_dir(small_dir)
