"""Ingest validation: the exchange calendar (gaps, holiday rows, its bound) and each bad row kind; errors write
nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.core.data.ingest.calendar import expected_days
from tasks.core.data.ingest.operation import IngestOptions, ingest
from tasks.core.data.ingest.sources import Source
from tasks.core.data.ingest.validation import IngestValidationError
from tasks.core.data.qlib_binary import read_calendar, read_field
from tasks.core.data.version import data_version
from tests.ingest.ingest_data import NEW_DAYS, new_rows, stored_dir, write_table


def table(tmp_path: Path, frame: pd.DataFrame, name: str = "new.csv") -> Source:
    return Source("table", str(write_table(frame, tmp_path / name)))


def test_new_days_are_appended_across_the_national_day_week(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    result = ingest(table(tmp_path, new_rows()), out)
    assert result.days_added == 3 and result.rows_added == 9
    assert list(read_calendar(out)[-3:]) == list(NEW_DAYS)
    close = read_field(out, "SH600000", "close", read_calendar(out))
    assert close.iloc[-1] == np.float32(new_rows().query("instrument == 'SH600000'")["close"].iloc[-1])


def test_a_gap_in_the_source_is_an_error_naming_the_missing_day_and_writes_nothing(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    before = data_version(out)
    with pytest.raises(IngestValidationError, match="trading days missing in the source: 1, first 2024-09-30"):
        ingest(table(tmp_path, new_rows(NEW_DAYS[1:])), out)
    assert data_version(out) == before


def test_allow_missing_days_writes_the_missing_trading_day_as_an_empty_day(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    result = ingest(table(tmp_path, new_rows(NEW_DAYS[1:])), out, IngestOptions(allow_missing_days=True))
    assert result.days_added == 3
    close = read_field(out, "SH600000", "close", read_calendar(out))
    assert np.isnan(close.loc["2024-09-30"]) and not np.isnan(close.loc["2024-10-08"])


def test_a_row_on_an_exchange_holiday_is_an_error(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    holiday = new_rows(NEW_DAYS[:1]).assign(date=pd.Timestamp("2024-10-02"))
    with pytest.raises(IngestValidationError, match="rows on non-trading days: 3, first 2024-10-02"):
        ingest(table(tmp_path, pd.concat([new_rows(), holiday])), out)


def test_a_suspended_instrument_day_is_allowed_and_reported(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    rows = new_rows()
    rows = rows.loc[~((rows["instrument"] == "SZ300750") & (rows["date"] == NEW_DAYS[1]))]
    result = ingest(table(tmp_path, rows), out)
    check = next(c for c in result.validation.checks if c.name.startswith("instrument days without a row"))
    assert check.count == 1 and check.examples == ["SZ300750 2024-10-08"]


BAD_ROWS = [
    ("duplicate rows", lambda rows: pd.concat([rows, rows.iloc[[0]]]), "SH600000 2024-09-30 date"),
    ("NaN price", lambda rows: rows.assign(open=rows["open"].where(rows.index != 4)), "SZ300750 2024-10-08 open"),
    ("non-positive price", lambda rows: rows.assign(low=rows["low"].where(rows.index != 4, 0.0)),
     "SZ300750 2024-10-08 low"),
    ("high below low", lambda rows: rows.assign(high=rows["high"].where(rows.index != 4, 1.0)),
     "SZ300750 2024-10-08 high"),
    ("close outside [low, high]", lambda rows: rows.assign(close=rows["close"].where(rows.index != 4, 1000.0)),
     "SZ300750 2024-10-08 close"),
    ("negative volume", lambda rows: rows.assign(volume=rows["volume"].where(rows.index != 4, -1.0)),
     "SZ300750 2024-10-08 volume"),
    ("non-positive factor", lambda rows: rows.assign(factor=rows["factor"].where(rows.index != 4, -0.5)),
     "SZ300750 2024-10-08 factor"),
]


@pytest.mark.parametrize(("check", "spoil", "named"), BAD_ROWS, ids=[row[0] for row in BAD_ROWS])
def test_each_bad_row_kind_is_an_error_naming_instrument_day_and_column(
    tmp_path: Path, check: str, spoil: object, named: str
) -> None:
    out = stored_dir(tmp_path)
    before = data_version(out)
    rows = spoil(new_rows())  # type: ignore[operator]
    with pytest.raises(IngestValidationError) as failure:
        ingest(table(tmp_path, rows), out)
    assert f"{check}: " in str(failure.value) and named in str(failure.value)
    assert data_version(out) == before


def test_a_move_beyond_the_boards_price_limit_is_a_warning_by_board(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    rows = new_rows(NEW_DAYS[:1])
    for column in ("open", "high", "low", "close", "vwap"):
        rows[column] = rows[column] * 1.15  # +16%: beyond the main board's 10%, inside ChiNext's 20%
    result = ingest(table(tmp_path, rows), out)
    check = next(c for c in result.validation.checks if "price limit" in c.name)
    assert check.level == "warning" and [e.split()[0] for e in check.examples] == ["SH000300", "SH600000"]


def test_beyond_the_librarys_last_session_a_holiday_file_decides_and_weekdays_warn(tmp_path: Path) -> None:
    holidays = tmp_path / "xshg_holidays.txt"
    holidays.write_text("# XSHG 2027\n2027-01-01  New Year\n2027-02-08\n")
    with_file = expected_days("cn", pd.Timestamp("2026-12-30").date(), pd.Timestamp("2027-01-05").date(), holidays)
    assert [f"{d:%m-%d}" for d in with_file.days] == ["12-30", "12-31", "01-04", "01-05"]
    assert with_file.warnings == []
    weekdays = expected_days("cn", pd.Timestamp("2026-12-30").date(), pd.Timestamp("2027-01-05").date())
    assert "01-01" in [f"{d:%m-%d}" for d in weekdays.days]
    assert len(weekdays.warnings) == 1 and "counting weekdays" in weekdays.warnings[0]


def test_the_synthetic_calendar_takes_the_sources_days(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    rows = new_rows(NEW_DAYS[1:])  # 2024-09-30 left out: no error, the source declares the days
    result = ingest(table(tmp_path, rows), out, IngestOptions(calendar="synthetic"))
    assert result.days_added == 2 and read_calendar(out)[-3] == pd.Timestamp("2024-09-27")
