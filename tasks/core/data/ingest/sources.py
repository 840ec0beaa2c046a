"""Where new rows come from: a directory of per-instrument files, one long table file, or a SQL query.

Every source yields one long frame: ``date`` (a day), ``instrument`` (upper-case) and the fields ``open, high,
low, close, volume`` plus ``vwap`` and ``factor`` when the source has them (a missing factor means 1.0).
A row whose prices are all empty is a suspension and is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import PipelineInputError

SOURCE_FIELDS = ("open", "high", "low", "close", "volume", "vwap", "factor")
REQUIRED = ("date", "instrument", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
#: The query's bound parameter: the last day already in the data directory.
AFTER_PARAMETER = "after"
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_.-]*$")
_NO_DAY = date(1900, 1, 1)


class SourceError(PipelineInputError):
    """A source cannot be read; the message names the file, the URL or the column."""


@dataclass(frozen=True)
class Source:
    """``kind`` is 'directory', 'table' or 'sql'; ``location`` a path or a SQLAlchemy URL. A source whose rows are
    already in memory (a synthetic feed) carries them as ``frame``, in the long layout, under a kind naming them."""

    kind: str
    location: str
    query: str | None = None
    frame: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}" + (f" ({self.query})" if self.query else "")


def parse_source(text: str, query: str | None = None) -> Source:
    """A directory, a table file (CSV/Parquet) or, with ``query``, a SQLAlchemy URL."""
    if "://" in text:
        if not query:
            raise SourceError(f"{text}: a database source needs --query 'SELECT ... WHERE date > :{AFTER_PARAMETER}'")
        return Source("sql", text, query)
    if query:
        raise SourceError(f"{text}: --query is for database URLs only")
    path = Path(text).expanduser()
    if path.is_dir():
        return Source("directory", str(path))
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        return Source("table", str(path))
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"
        raise SourceError(f"{text}: no such folder or file{where}")
    raise SourceError(f"{text}: not a directory, a .csv/.parquet table file, or a database URL")


def read_rows(source: Source, after: date | None) -> pd.DataFrame:
    """The source's rows as one long frame (the SQL source only returns what its query selects after ``after``)."""
    if source.frame is not None:
        frame = _lower_columns(source.frame.copy())
    elif source.kind == "directory":
        frame = _read_directory(Path(source.location), after)
    elif source.kind == "table":
        frame = _read_table(Path(source.location))
    else:
        frame = _read_sql(source.location, source.query or "", after)
    return normalize(frame, source)


def _read_directory(folder: Path, after: date | None) -> pd.DataFrame:
    """Every ``<SYMBOL>.csv`` or ``.parquet`` file in ``folder`` (a ``symbol`` column, if any, names the instrument).

    An empty folder is a feed with nothing new when the data directory already holds days (``after``), and an error
    for a new directory (there is nothing to create it from)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if not files and after is not None:
        return pd.DataFrame(columns=list(REQUIRED))
    if not files:
        raise SourceError(f"{folder}: no *.csv files found (nor *.parquet)")
    frames = []
    seen: dict[str, Path] = {}
    for path in files:
        symbol = path.stem.upper()
        if symbol in seen:
            raise SourceError(f"{path}: instrument {symbol} appears twice (also {seen[symbol].name})")
        seen[symbol] = path
        frame = _read_instrument_file(path)
        frame["instrument"] = symbol
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _read_instrument_file(path: Path) -> pd.DataFrame:
    """One instrument's file: CSV files through the strict CSV reader (errors name the line), Parquet by pandas."""
    if path.suffix.lower() == ".csv":
        from tasks.core.data.csv_import import (
            read_instrument_csv,  # the CSV reader's module imports the ingest
        )

        return read_instrument_csv(path).drop(columns=["change"]).rename_axis("date").reset_index()
    frame = _lower_columns(pd.read_parquet(path))
    return frame.drop(columns=["symbol", "instrument"], errors="ignore")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() != ".csv" else pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise SourceError(f"{path}: unreadable table ({exc})") from None
    return _lower_columns(frame)


def _read_sql(url: str, query: str, after: date | None) -> pd.DataFrame:
    """Run ``query`` with ``:after`` bound to the last stored day (1900-01-01 for an empty directory)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise SourceError(f"bad database URL {url!r}: {exc}") from None
    parameters = {AFTER_PARAMETER: after or _NO_DAY} if f":{AFTER_PARAMETER}" in query else {}
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(text(query), connection, params=parameters)
    except SQLAlchemyError as exc:
        raise SourceError(f"query on {engine.url.render_as_string()} failed: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return _lower_columns(frame)


def _lower_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(name).strip().lower() for name in frame.columns]
    if "instrument" not in frame.columns and "symbol" in frame.columns:
        frame = frame.rename(columns={"symbol": "instrument"})
    return frame


def normalize(frame: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Qlib's column names and types; upper-case instruments; suspension rows dropped; factor 1.0 when absent."""
    missing = [name for name in REQUIRED if name not in frame.columns]
    if missing:
        raise SourceError(f"{source}: missing column(s) {', '.join(missing)} (columns: {', '.join(frame.columns)})")
    out = pd.DataFrame({"date": _dates(frame["date"], source), "instrument": frame["instrument"].astype(str)})
    out["instrument"] = out["instrument"].str.strip().str.upper()
    bad = out.loc[~out["instrument"].str.match(_SYMBOL), "instrument"]
    if len(bad):
        raise SourceError(f"{source}: {bad.iloc[0]!r} is not a valid instrument symbol")
    for name in SOURCE_FIELDS:
        column = frame[name] if name in frame.columns else np.nan
        out[name] = pd.to_numeric(column, errors="coerce") if name in frame.columns else column
    out["factor"] = out["factor"].where(out["factor"].notna() | out["close"].isna(), 1.0)
    traded = out[list(PRICES)].notna().any(axis=1)
    return out.loc[traded].sort_values(["instrument", "date"], kind="stable").reset_index(drop=True)


def _dates(column: pd.Series, source: Source) -> pd.Series:
    try:
        return pd.to_datetime(column).dt.tz_localize(None).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise SourceError(f"{source}: unparseable date ({exc})") from None
