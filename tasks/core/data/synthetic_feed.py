"""A synthetic data feed: the trading days a synthetic directory would get next, written as one long table file
(date, instrument, fields) for ``qmp data ingest`` instead of being appended. The directory is left unchanged."""

from __future__ import annotations

from pathlib import Path

from tasks.core.data.synthetic import synthetic_days


def write_synthetic_feed(data_dir: Path, until: str, seed: int, table: Path, *, benchmark: str = "SH000300",
                         alpha_strength: float = 1.0) -> int:
    """Write the rows of the synthetic days after ``data_dir``'s end up to ``until`` to ``table`` (.csv or
    .parquet); returns how many rows. The same directory, ``until`` and ``seed`` give the same rows, those
    ``qmp data synth --append-until`` ingests."""
    rows = synthetic_days(Path(data_dir), until, seed, benchmark=benchmark, alpha_strength=alpha_strength).rows
    table = Path(table)
    table.parent.mkdir(parents=True, exist_ok=True)
    if table.suffix.lower() == ".csv":
        rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d")).to_csv(table, index=False)
    else:
        rows.to_parquet(table, index=False)
    return len(rows)
