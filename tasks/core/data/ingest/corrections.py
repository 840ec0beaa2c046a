"""Rows on days the data directory already holds: unchanged ones are ignored; the ones that change a stored value
are corrections, refused unless the ingest says to apply or to skip them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.data.ingest.sources import SOURCE_FIELDS
from tasks.core.data.qlib_binary import FREQ, read_field
from tasks.core.errors import PipelineInputError

MODES = ("refuse", "apply", "skip")
EXAMPLES = 5


class CorrectionsRefusedError(PipelineInputError):
    """Rows would change stored days and the ingest did not say whether to apply or skip them."""


@dataclass
class Corrections:
    """The rows that change stored values: ``rows`` is the long frame of those rows, ``mode`` what was decided."""

    mode: str
    rows: pd.DataFrame
    examples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.rows)

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "rows": self.count, "instruments": int(self.rows["instrument"].nunique()),
                "examples": self.examples}


def find_corrections(out: Path, calendar: pd.DatetimeIndex, stored_rows: pd.DataFrame, mode: str) -> Corrections:
    """Compare the source's rows on stored days with the stored float32 values; refuse them if ``mode`` is 'refuse'."""
    if mode not in MODES:
        raise PipelineInputError(f"--corrections must be one of {', '.join(MODES)}, got {mode!r}")
    changed: list[pd.DataFrame] = []
    examples: list[str] = []
    for instrument, rows in stored_rows.groupby("instrument", sort=True):
        if not (out / "features" / str(instrument).lower() / f"close.{FREQ}.bin").is_file():
            changed.append(rows)
            examples.extend(f"{instrument} {day:%Y-%m-%d} (no stored series)" for day in rows["date"][:EXAMPLES])
            continue
        differing, described = _changed_rows(out, str(instrument), rows, calendar)
        changed.append(differing)
        examples.extend(described)
    found = pd.concat(changed, ignore_index=True) if changed else stored_rows.iloc[:0]
    corrections = Corrections(mode, found, examples[:EXAMPLES])
    if corrections.count and mode == "refuse":
        raise CorrectionsRefusedError(
            f"{corrections.count} rows change stored days (first: {'; '.join(corrections.examples)}); nothing written: "
            "give --corrections apply to rewrite them or --corrections skip to keep the stored values"
        )
    return corrections


def _changed_rows(out: Path, instrument: str, rows: pd.DataFrame, calendar: pd.DatetimeIndex
                  ) -> tuple[pd.DataFrame, list[str]]:
    """The rows of ``instrument`` whose value differs from the stored one in some field, and the first few."""
    dates = pd.DatetimeIndex(rows["date"])
    differs = np.zeros(len(rows), dtype=bool)
    described: list[str] = []
    for name in SOURCE_FIELDS:
        path = out / "features" / instrument.lower() / f"{name}.{FREQ}.bin"
        stored = read_field(out, instrument, name, calendar) if path.is_file() else pd.Series(dtype="float32")
        old = stored.reindex(dates).to_numpy(dtype=np.float32)
        new = rows[name].to_numpy(dtype=np.float64).astype(np.float32)
        if name == "vwap":
            new = np.where(np.isnan(new), old, new)  # a source without vwap does not erase it
        hit = ~((old == new) | (np.isnan(old) & np.isnan(new)))
        for position in np.flatnonzero(hit & ~differs)[:EXAMPLES]:
            described.append(f"{instrument} {dates[position]:%Y-%m-%d} {name} {old[position]:g} -> {new[position]:g}")
        differs |= hit
    return rows.loc[differs], described[:EXAMPLES]
