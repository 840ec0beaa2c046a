"""A synthetic data feed: the trading days a synthetic directory would get next, written as one long table file
(date, instrument, fields) for ``qmp data ingest`` instead of being appended. The directory is left unchanged."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from tasks.core.data.ingest.sources import SOURCE_FIELDS
from tasks.core.data.qlib_binary import read_calendar, read_field
from tasks.core.data.synthetic import append_synthetic


def write_synthetic_feed(data_dir: Path, until: str, seed: int, table: Path, *, benchmark: str = "SH000300") -> int:
    """Write the rows of the synthetic days after ``data_dir``'s end up to ``until`` to ``table`` (.csv or
    .parquet); returns how many rows. The same directory, ``until`` and ``seed`` give the same rows."""
    data_dir, table = Path(data_dir), Path(table)
    with tempfile.TemporaryDirectory(prefix="qmp-feed-") as scratch:
        extended = Path(scratch) / "data"
        shutil.copytree(data_dir, extended, ignore=shutil.ignore_patterns(".qmp-ingest"))
        append_synthetic(extended, until, seed, benchmark=benchmark)
        stored, calendar = read_calendar(data_dir), read_calendar(extended)
        new_days = calendar[len(stored):]
        frames = []
        for directory in sorted((extended / "features").iterdir()):
            symbol = directory.name.upper()
            fields = {name: read_field(extended, symbol, name, calendar) for name in SOURCE_FIELDS}
            frame = pd.DataFrame(fields).reindex(new_days).dropna(subset=["close"])
            frames.append(frame.assign(instrument=symbol).rename_axis("date").reset_index())
    rows = pd.concat(frames, ignore_index=True)
    table.parent.mkdir(parents=True, exist_ok=True)
    if table.suffix.lower() == ".csv":
        rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d")).to_csv(table, index=False)
    else:
        rows.to_parquet(table, index=False)
    return len(rows)
