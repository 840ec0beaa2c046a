"""Small market data on the Shanghai exchange's calendar for the ingest tests: a stored directory and new rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.data.csv_import import import_csv

SYMBOLS = ("SH600000", "SZ300750", "SH000300")
HEADER = ["date", "instrument", "open", "high", "low", "close", "volume", "vwap", "factor"]
# XSHG: 2024-09-23..27 and 2024-09-30 trade, 2024-10-01..07 is the National Day week, 2024-10-08 trades again.
STORED_DAYS = pd.DatetimeIndex(["2024-09-23", "2024-09-24", "2024-09-25", "2024-09-26", "2024-09-27"])
NEW_DAYS = pd.DatetimeIndex(["2024-09-30", "2024-10-08", "2024-10-09"])




def continuous_rows(days: pd.DatetimeIndex, symbols: tuple[str, ...] = SYMBOLS) -> pd.DataFrame:
    """Rows whose closes rise 1% a day across every day given (so appended days stay inside price limits)."""
    records = []
    for number, symbol in enumerate(symbols):
        base = 10.0 * (100 if symbol == "SH000300" else 1 + number)
        for offset, day in enumerate(days):
            close = float(np.float32(base * 1.01**offset))
            records.append([day, symbol, close, close * 1.01, close * 0.99, close, 1000.0 + offset, close, 1.0])
    return pd.DataFrame(records, columns=HEADER)


ALL_DAYS = STORED_DAYS.append(NEW_DAYS)
HISTORY = continuous_rows(ALL_DAYS)


def stored_dir(tmp_path: Path) -> Path:
    """A Qlib directory holding ``HISTORY`` up to 2024-09-27, imported from per-instrument CSV files."""
    src = tmp_path / "csv"
    src.mkdir(parents=True)
    for symbol, rows in HISTORY.loc[HISTORY["date"].isin(STORED_DAYS)].groupby("instrument"):
        frame = rows.drop(columns=["instrument"]).assign(date=rows["date"].dt.strftime("%Y-%m-%d"))
        frame.to_csv(src / f"{symbol}.csv", index=False)
    out = tmp_path / "qlib"
    import_csv(src, out)
    return out


def new_rows(days: pd.DatetimeIndex = NEW_DAYS) -> pd.DataFrame:
    """The continuation of ``HISTORY`` on ``days``."""
    return HISTORY.loc[HISTORY["date"].isin(days)].reset_index(drop=True)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as a long CSV or Parquet table file."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path
