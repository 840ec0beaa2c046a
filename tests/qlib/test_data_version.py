"""The data version: calendar end plus a fingerprint that changes with appended days and corrected values."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tasks.core.data.synthetic import synthesize
from tasks.core.data.version import DataVersion, DataVersionError, data_version


@pytest.fixture
def small_data(tmp_path: Path) -> Path:
    return synthesize(tmp_path / "data", instruments=5, start="2020-01-01", end="2020-06-30", seed=3).out


def test_same_directory_same_version(small_data: Path) -> None:
    first = data_version(small_data)
    assert first == data_version(small_data)
    assert first.calendar_end == date.fromisoformat((small_data / "calendars/day.txt").read_text().split()[-1])
    assert DataVersion.parse(str(first)) == first


def test_corrected_past_value_is_a_new_version(small_data: Path) -> None:
    before = data_version(small_data)
    close = next((small_data / "features").iterdir()) / "close.day.bin"
    values = np.fromfile(close, dtype="<f4")
    values[5] *= 1.01
    stat = close.stat()
    values.tofile(close)
    os.utime(close, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = data_version(small_data)
    assert after.calendar_end == before.calendar_end
    assert after.fingerprint != before.fingerprint


def test_new_instrument_list_is_a_new_version(small_data: Path) -> None:
    before = data_version(small_data)
    universe = small_data / "instruments" / "csi300.txt"
    universe.write_text(universe.read_text().splitlines(keepends=True)[0])
    assert data_version(small_data).fingerprint != before.fingerprint


def test_not_a_data_directory(tmp_path: Path) -> None:
    with pytest.raises(DataVersionError, match="calendars"):
        data_version(tmp_path)
    with pytest.raises(DataVersionError, match="not a data version"):
        DataVersion.parse("2020-01-01")
