"""Corrections in each mode, the three sources (Parquet directory in Qlib's collector layout, long table, SQL on
PostgreSQL) and the lock that keeps two ingests from writing one directory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from tasks.core.data.ingest.commit import IngestBusyError, ingest_lock
from tasks.core.data.ingest.corrections import CorrectionsRefusedError
from tasks.core.data.ingest.operation import IngestOptions, ingest
from tasks.core.data.ingest.sources import Source, parse_source
from tasks.core.data.qlib_binary import read_calendar, read_field, validate_qlib_dir
from tasks.core.data.version import data_version
from tests.ingest.ingest_data import HISTORY, NEW_DAYS, STORED_DAYS, new_rows, stored_dir, write_table

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def corrected_history() -> pd.DataFrame:
    """Every stored row plus the new days, with SH600000's close on 2024-09-25 corrected (within its range)."""
    rows = HISTORY.copy()
    fix = (rows["instrument"] == "SH600000") & (rows["date"] == STORED_DAYS[2])
    rows.loc[fix, "close"] = rows.loc[fix, "low"]
    return rows


def ingest_table(tmp_path: Path, out: Path, rows: pd.DataFrame, **options: object) -> object:
    return ingest(Source("table", str(write_table(rows, tmp_path / "all.csv"))), out, IngestOptions(**options))  # type: ignore[arg-type]


def test_corrections_are_refused_by_default_naming_how_many_and_the_first(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    before = data_version(out)
    with pytest.raises(CorrectionsRefusedError, match=r"^1 rows change stored days \(first: SH600000 2024-09-25 close"):
        ingest_table(tmp_path, out, corrected_history())
    assert data_version(out) == before


def test_unchanged_stored_rows_offered_again_are_not_corrections(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    result = ingest_table(tmp_path, out, HISTORY)
    assert result.days_added == 3 and result.corrections["rows"] == 0  # type: ignore[attr-defined]


def test_skipped_corrections_keep_stored_values_and_are_counted(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    stored = read_field(out, "SH600000", "close", read_calendar(out))
    result = ingest_table(tmp_path, out, corrected_history(), corrections="skip")
    assert result.corrections == {"mode": "skip", "rows": 1, "instruments": 1,  # type: ignore[attr-defined]
                                  "examples": [result.corrections["examples"][0]]}  # type: ignore[attr-defined]
    after = read_field(out, "SH600000", "close", read_calendar(out))
    assert after.loc[STORED_DAYS].equals(stored) and result.days_added == 3  # type: ignore[attr-defined]


def test_applied_corrections_rewrite_the_day_and_its_change(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    before = data_version(out)
    result = ingest_table(tmp_path, out, corrected_history(), corrections="apply")
    calendar = read_calendar(out)
    close = read_field(out, "SH600000", "close", calendar)
    change = read_field(out, "SH600000", "change", calendar)
    fixed = corrected_history().set_index(["instrument", "date"]).loc[("SH600000", STORED_DAYS[2]), "close"]
    assert close.loc[STORED_DAYS[2]] == np.float32(fixed)
    np.testing.assert_allclose(change.loc[STORED_DAYS[3]], close.loc[STORED_DAYS[3]] / close.loc[STORED_DAYS[2]] - 1,
                               rtol=1e-5)
    assert result.corrections["mode"] == "apply" and result.days_added == 3  # type: ignore[attr-defined]
    assert data_version(out) != before and not list(out.glob("features/*/*.ingest-new"))
    validate_qlib_dir(out, benchmark="SH000300")


def test_a_parquet_directory_in_the_collectors_normalize_layout_is_a_source(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    folder = tmp_path / "normalize"
    folder.mkdir()
    for symbol, rows in new_rows().groupby("instrument"):
        rows.rename(columns={"instrument": "symbol"}).assign(symbol=symbol.lower()).to_parquet(
            folder / f"{symbol.lower()}.parquet", index=False)
    result = ingest(parse_source(str(folder)), out)
    assert result.days_added == 3 and result.instruments == 3


def test_a_long_parquet_table_is_a_source(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    result = ingest(parse_source(str(write_table(new_rows(), tmp_path / "new.parquet"))), out)
    assert result.days_added == 3


@pytest.fixture
def market_table() -> Iterator[str]:
    """A PostgreSQL table holding every row (stored and new days), dropped afterwards."""
    name = f"bars_{uuid.uuid4().hex[:8]}"
    engine = create_engine(POSTGRES)
    HISTORY.rename(columns={"date": "trade_date", "instrument": "code"}).to_sql(name, engine, index=False)
    yield name
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {name}"))
    engine.dispose()


def test_a_sql_query_on_postgresql_reads_the_days_after_the_stored_end(tmp_path: Path, market_table: str) -> None:
    out = stored_dir(tmp_path)
    query = (f"SELECT trade_date AS date, code AS instrument, open, high, low, close, volume, vwap, factor "
             f"FROM {market_table} WHERE trade_date > :after")
    result = ingest(parse_source(POSTGRES, query), out)
    assert result.days_added == 3 and result.rows_added == 9 and result.corrections["rows"] == 0
    again = ingest(parse_source(POSTGRES, query), out)
    assert again.days_added == 0 and again.rows_added == 0


def test_a_second_ingest_into_a_locked_directory_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    out = stored_dir(tmp_path)
    before = data_version(out)
    with ingest_lock(out), pytest.raises(IngestBusyError, match="another ingest is writing this directory"):
        ingest(Source("table", str(write_table(new_rows(), tmp_path / "new.csv"))), out)
    assert data_version(out) == before
    assert ingest(Source("table", str(tmp_path / "new.csv")), out).days_added == len(NEW_DAYS)
