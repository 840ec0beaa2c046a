"""Synthetic daily market with a planted, learnable alpha, written as a Qlib data directory.

Each stock's daily return is ``beta * market + alpha(t-1) + k * (quirk(t-1)**2 - 1) + noise``.
``alpha`` is a persistent AR(1) process that also drives the stock's trading volume, so Alpha158 /
Alpha360 volume ratios and momentum carry it linearly. ``quirk`` is a second persistent process,
visible in where the VWAP sits relative to the close, whose effect is symmetric (U-shaped): a linear
model cannot use it, a tree model can. So a good model reaches a clearly positive IC, LightGBM beats
a linear model, and a model trained on shuffled labels gets nothing. The generator also produces holidays
(business days missing from the calendar), suspensions and missing rows (NaN days), late listings,
early delistings, late index inclusions and price-adjustment events, so the data exercises the same
paths as real CN data. The same seed gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tasks.core.data.ingest.calendar import declare_calendar
from tasks.core.data.ingest.sources import SOURCE_FIELDS, Source
from tasks.core.data.qlib_binary import (
    FIELDS,
    Span,
    prepare_output_dir,
    read_calendar,
    read_field,
    read_universe,
    validate_qlib_dir,
    write_calendar,
    write_features,
    write_universe,
)
from tasks.core.errors import PipelineInputError

if TYPE_CHECKING:
    from registry import ModelRegistry

DEFAULT_START = "2021-01-01"
DEFAULT_END = "2022-12-31"
LIMIT = 0.1  # CN daily price limit; the default backtest treats moves >= 9.5% as limit hits
ALPHA_PERSISTENCE = 0.9
ALPHA_STD = 0.0025  # daily; about 0.1 cross-sectional correlation with next-day returns
QUIRK_EFFECT = 0.002  # daily return per unit of (quirk**2 - 1); comparable in strength to alpha

Progress = Callable[[int, int], None]


@dataclass
class SyntheticMarket:
    """Generated data before it is written: one frame per symbol (NaN rows are suspensions)."""

    calendar: pd.DatetimeIndex
    frames: dict[str, pd.DataFrame]
    benchmark: pd.DataFrame
    index_joins: dict[str, pd.Timestamp] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthReport:
    """What :func:`synthesize` wrote."""

    out: Path
    instruments: int
    days: int
    start: str
    end: str
    benchmark: str
    universe: str
    holidays: int
    suspended_days: int
    late_listings: int
    delistings: int


def generate_market(
    instruments: int, start: str, end: str, seed: int, alpha_strength: float = 1.0
) -> SyntheticMarket:
    """Generate prices, volumes and adjustment factors for ``instruments`` stocks and an index."""
    if instruments < 2:
        raise PipelineInputError(f"need at least 2 instruments, got {instruments}")
    rng = np.random.default_rng(seed)
    business = pd.bdate_range(start, end)
    if len(business) < 80:
        raise PipelineInputError(f"{start}..{end} has {len(business)} business days; Alpha158 needs at least 80")
    holidays = rng.choice(np.arange(1, len(business) - 1), size=len(business) // 50, replace=False)
    calendar = business.delete(np.sort(holidays))
    days, n = len(calendar), instruments

    market = rng.normal(0.0003, 0.01, days)
    beta = rng.uniform(0.6, 1.4, n)
    noise_std = rng.uniform(0.012, 0.025, n)
    alpha, quirk = _persistent_normal(rng, days, n), _persistent_normal(rng, days, n)
    signal = alpha_strength * (ALPHA_STD * alpha + QUIRK_EFFECT * (quirk**2 - 1))
    expected = np.vstack([signal[:1], signal[:-1]])  # yesterday's signal drives today's return
    returns = beta * market[:, None] + expected + rng.normal(0, 1, (days, n)) * noise_std

    traded = _trading_mask(rng, days, n)
    returns = np.where(traded, np.clip(returns, -LIMIT, LIMIT), 0.0)  # a suspended price stays put
    close = rng.uniform(5, 60, n) * np.cumprod(1 + returns, axis=0)
    factor = _adjustment_factors(rng, days, n)
    volume = rng.uniform(1e5, 5e6, n) * np.exp(0.6 * alpha + rng.normal(0, 0.4, (days, n)))
    wiggle = noise_std * rng.normal(0, 1, (3, days, n))
    prev_close = np.vstack([close[:1], close[:-1]])
    open_ = prev_close * (1 + np.clip(0.3 * wiggle[0], -LIMIT, LIMIT))
    high = np.maximum(open_, close) * (1 + 0.4 * np.abs(wiggle[1]))
    low = np.minimum(open_, close) * (1 - 0.4 * np.abs(wiggle[2]))
    vwap = close * (1 + 0.008 * quirk + 0.002 * rng.normal(0, 1, (days, n)))
    high, low = np.maximum(high, vwap), np.minimum(low, vwap)

    symbols = [f"SH{600000 + i}" if i % 2 == 0 else f"SZ{i:06d}" for i in range(n)]
    frames = {}
    for i, symbol in enumerate(symbols):
        frame = pd.DataFrame(
            {
                "open": open_[:, i],
                "high": high[:, i],
                "low": low[:, i],
                "close": close[:, i],
                "volume": volume[:, i],
                "vwap": vwap[:, i],
                "factor": factor[:, i],
            },
            index=calendar,
        )
        frame[~traded[:, i]] = np.nan
        frames[symbol] = _with_change(frame)
    benchmark = _benchmark(calendar, np.where(traded, returns, np.nan), volume * traded)
    listed_from_start = [s for i, s in enumerate(symbols) if traded[0, i]]
    joiners = rng.choice(listed_from_start, size=max(1, n // 10), replace=False)
    joins = {str(s): calendar[int(rng.integers(days // 6, days // 3))] for s in joiners}
    return SyntheticMarket(calendar, frames, benchmark, joins)


def _persistent_normal(rng: np.random.Generator, days: int, n: int) -> np.ndarray:
    """Standard-normal AR(1) paths with the alpha's persistence."""
    paths = np.empty((days, n))
    paths[0] = rng.normal(0, 1, n)
    shocks = rng.normal(0, np.sqrt(1 - ALPHA_PERSISTENCE**2), (days, n))
    for t in range(1, days):
        paths[t] = ALPHA_PERSISTENCE * paths[t - 1] + shocks[t]
    return paths


def _trading_mask(rng: np.random.Generator, days: int, n: int) -> np.ndarray:
    """True where a stock trades: late listings, early delistings, suspension spells, lost rows."""
    traded = np.ones((days, n), dtype=bool)
    late, gone = rng.choice(n, size=(2, max(1, n // 10)), replace=False)
    for i in late:
        traded[: int(rng.integers(days // 10, days // 2)), i] = False
    for i in gone:
        traded[int(rng.integers(days * 2 // 3, days - 20)) :, i] = False
    for i in np.flatnonzero(rng.random(n) < 0.3):
        for _ in range(int(rng.integers(1, 3))):
            begin = int(rng.integers(0, days - 10))
            traded[begin : begin + int(rng.integers(1, 10)), i] = False
    traded &= rng.random((days, n)) > 0.002
    return traded


def _adjustment_factors(rng: np.random.Generator, days: int, n: int) -> np.ndarray:
    """Piecewise-constant adjustment factors: dividends and splits raise them on event days."""
    jumps = np.ones((days, n))
    for i in range(n):
        for day in rng.integers(1, days, size=int(rng.integers(0, 3))):
            jumps[day, i] = rng.uniform(1.02, 1.5)
    return np.cumprod(jumps, axis=0)


def _with_change(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``change``: close over the previous traded close, minus one (NaN on the first day)."""
    frame["change"] = frame["close"] / frame["close"].ffill().shift(1) - 1
    frame.loc[frame["close"].isna(), "change"] = np.nan
    return frame


def _benchmark(calendar: pd.DatetimeIndex, returns: np.ndarray, volume: np.ndarray) -> pd.DataFrame:
    """Equal-weighted index of the stocks trading each day."""
    daily = np.nan_to_num(np.nanmean(returns, axis=1))
    close = 3000 * np.cumprod(1 + daily)
    prev = np.concatenate([[close[0]], close[:-1]])
    frame = pd.DataFrame(
        {
            "open": prev,
            "high": np.maximum(prev, close) * 1.002,
            "low": np.minimum(prev, close) * 0.998,
            "close": close,
            "volume": volume.sum(axis=1),
            "vwap": (prev + close) / 2,
            "factor": 1.0,
        },
        index=calendar,
    )
    return _with_change(frame)


def _index_members(market: SyntheticMarket, spans: dict[str, Span]) -> dict[str, Span]:
    """Index membership: late joiners enter later, and stocks leave a month before they delist.

    Leaving early matters: a TopkDropout portfolio that still holds a delisted stock can never sell
    it, and two such stocks freeze a portfolio with ``n_drop=2`` (as happens with real indices).
    """
    calendar, last = market.calendar, market.calendar[-1]
    members = {}
    for symbol, span in spans.items():
        start = max(span.start, market.index_joins.get(symbol, span.start))
        end = span.end if span.end == last else calendar[max(calendar.get_loc(span.end) - 20, 0)]
        if start <= end:
            members[symbol] = Span(start, end)
    return members


def synthesize(
    out: Path,
    instruments: int = 60,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
    seed: int = 0,
    *,
    benchmark: str = "SH000300",
    universe: str = "csi300",
    alpha_strength: float = 1.0,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> SynthReport:
    """Write a complete, validated Qlib data directory of synthetic data to ``out``."""
    market = generate_market(instruments, start, end, seed, alpha_strength)
    out = Path(out)
    prepare_output_dir(out, overwrite)
    write_calendar(out, market.calendar)
    spans: dict[str, Span] = {}
    for done, (symbol, frame) in enumerate(market.frames.items(), start=1):
        spans[symbol] = write_features(out, symbol, frame[list(FIELDS)], market.calendar)
        if progress:
            progress(done, len(market.frames))
    write_features(out, benchmark, market.benchmark[list(FIELDS)], market.calendar)
    write_universe(out, "all", spans)
    write_universe(out, universe, _index_members(market, spans))
    validate_qlib_dir(out, benchmark=benchmark)
    declare_calendar(out, "synthetic")  # its holidays are random: ingests follow the source's days
    suspended = sum(
        int(f.loc[spans[s].start : spans[s].end, "close"].isna().sum()) for s, f in market.frames.items()
    )
    return SynthReport(
        out=out,
        instruments=instruments,
        days=len(market.calendar),
        start=f"{market.calendar[0]:%Y-%m-%d}",
        end=f"{market.calendar[-1]:%Y-%m-%d}",
        benchmark=benchmark,
        universe=universe,
        holidays=len(pd.bdate_range(start, end)) - len(market.calendar),
        suspended_days=suspended,
        late_listings=sum(span.start > market.calendar[0] for span in spans.values()),
        delistings=sum(span.end < market.calendar[-1] for span in spans.values()),
    )


@dataclass(frozen=True)
class AppendReport:
    """What :func:`append_synthetic` added; ``data_version`` is the directory's version after it, ``record_id`` its
    record in the registry (None without one)."""

    out: Path
    instruments: int
    days: int
    start: str
    end: str
    data_version: str | None = None
    record_id: int | None = None


@dataclass(frozen=True)
class SyntheticDays:
    """The trading days a synthetic directory gets next, as one long table (``date``, ``instrument``, the fields;
    a suspension has no row), and how many stocks they continue."""

    rows: pd.DataFrame
    days: pd.DatetimeIndex
    instruments: int


def synthetic_days(
    out: Path, until: str, seed: int = 0, *, benchmark: str = "SH000300", alpha_strength: float = 1.0
) -> SyntheticDays:
    """The synthetic trading days after ``out``'s end up to ``until``; ``out`` is only read.

    The new days continue each listed stock from its last close and factor with the same model of
    returns (fresh alpha and quirk paths; ``alpha_strength`` -1 flips the planted alpha, a regime
    change). Holidays, lost rows and a benchmark follow as in :func:`synthesize`. The same directory,
    ``until`` and ``seed`` give the same rows.
    """
    out = Path(out)
    calendar = read_calendar(out)
    last = calendar[-1]
    business = pd.bdate_range(last + pd.Timedelta(days=1), until)
    if business.empty:
        raise PipelineInputError(f"{out}: already ends {last:%Y-%m-%d}; nothing to append until {until}")
    rng = np.random.default_rng([seed, int(last.strftime("%Y%m%d"))])
    if len(business) > 2:
        holidays = rng.choice(np.arange(1, len(business) - 1), size=len(business) // 50, replace=False)
        business = business.delete(np.sort(holidays))
    live = _trading_on_last_day(out, calendar)
    frames, market = _continued_stocks(rng, live, business, alpha_strength)
    frames[benchmark] = _continued_benchmark(out, benchmark, calendar, business, market)
    rows = pd.concat(
        [frame.dropna(subset=["close"]).assign(instrument=symbol.upper()).rename_axis("date").reset_index()
         for symbol, frame in frames.items()], ignore_index=True,
    )
    return SyntheticDays(rows[["date", "instrument", *SOURCE_FIELDS]], business, len(live))


def append_synthetic(
    out: Path,
    until: str,
    seed: int = 0,
    *,
    benchmark: str = "SH000300",
    alpha_strength: float = 1.0,
    registry: Callable[[], ModelRegistry] | None = None,
) -> AppendReport:
    """Ingest :func:`synthetic_days` into ``out`` (validated, crash-safe, stored bytes unchanged: the ingest of
    ``qmp data ingest``, on the calendar of the source's own days); with ``registry``, its data version is recorded
    there as an ingest's is."""
    from tasks.core.data.ingest.operation import IngestOptions, ingest
    from tasks.core.data.ingest.record import ingest_recorded

    out = Path(out)
    new = synthetic_days(out, until, seed, benchmark=benchmark, alpha_strength=alpha_strength)
    source = Source("synthetic", f"{out} until {until} (seed {seed})", frame=new.rows)
    options = IngestOptions(calendar="synthetic", universes=(), benchmark=benchmark)
    if registry is None:
        result, record = ingest(source, out, options), None
    else:
        result, record = ingest_recorded(registry, source, out, options)
    validate_qlib_dir(out, benchmark=benchmark)
    return AppendReport(out, new.instruments, result.days_added, f"{new.days[0]:%Y-%m-%d}", f"{new.days[-1]:%Y-%m-%d}",
                        result.data_version, record.id if record else None)


def _trading_on_last_day(out: Path, calendar: pd.DatetimeIndex) -> dict[str, tuple[float, float]]:
    """Each listed stock with a close on the calendar's last day: (last close, last factor)."""
    last = calendar[-1]
    live = {}
    for symbol in sorted(read_universe(out, "all")):
        close = read_field(out, symbol, "close", calendar)
        if close.index[-1] == last and not np.isnan(close.iloc[-1]):
            factor = read_field(out, symbol, "factor", calendar)
            live[symbol] = (float(close.iloc[-1]), float(factor.iloc[-1]))
    if not live:
        raise PipelineInputError(f"{out}: no instrument trades on the last day {last:%Y-%m-%d}; nothing to continue")
    return live


@dataclass(frozen=True)
class _MarketDays:
    """What the benchmark is built from: the stocks' returns (NaN when not traded) and traded volume."""

    returns: np.ndarray
    volume: np.ndarray


def _continued_stocks(
    rng: np.random.Generator, live: dict[str, tuple[float, float]], business: pd.DatetimeIndex, alpha_strength: float
) -> tuple[dict[str, pd.DataFrame], _MarketDays]:
    """The ``live`` stocks' rows on ``business`` days, continued from their last close and factor with
    :func:`synthesize`'s model of returns (no ``change``: the ingest computes it across the boundary)."""
    days, n = len(business), len(live)
    market = rng.normal(0.0003, 0.01, days)
    beta = rng.uniform(0.6, 1.4, n)
    noise_std = rng.uniform(0.012, 0.025, n)
    alpha, quirk = _persistent_normal(rng, days + 1, n), _persistent_normal(rng, days + 1, n)
    signal = alpha_strength * (ALPHA_STD * alpha + QUIRK_EFFECT * (quirk**2 - 1))
    returns = beta * market[:, None] + signal[:-1] + rng.normal(0, 1, (days, n)) * noise_std
    alpha, quirk = alpha[1:], quirk[1:]
    traded = rng.random((days, n)) > 0.002
    returns = np.where(traded, np.clip(returns, -LIMIT, LIMIT), 0.0)
    last_close = np.array([c for c, _ in live.values()])
    close = last_close * np.cumprod(1 + returns, axis=0)
    factor = np.array([f for _, f in live.values()]) * np.ones((days, n))
    volume = rng.uniform(1e5, 5e6, n) * np.exp(0.6 * alpha + rng.normal(0, 0.4, (days, n)))
    wiggle = noise_std * rng.normal(0, 1, (3, days, n))
    prev_close = np.vstack([last_close, close[:-1]])
    open_ = prev_close * (1 + np.clip(0.3 * wiggle[0], -LIMIT, LIMIT))
    high = np.maximum(open_, close) * (1 + 0.4 * np.abs(wiggle[1]))
    low = np.minimum(open_, close) * (1 - 0.4 * np.abs(wiggle[2]))
    vwap = close * (1 + 0.008 * quirk + 0.002 * rng.normal(0, 1, (days, n)))
    high, low = np.maximum(high, vwap), np.minimum(low, vwap)
    frames = {}
    for i, symbol in enumerate(live):
        columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "vwap": vwap}
        frame = pd.DataFrame({k: v[:, i] for k, v in columns.items()}, index=business)
        frame["factor"] = factor[:, i]
        frame[~traded[:, i]] = np.nan
        frames[symbol] = frame[list(SOURCE_FIELDS)]
    return frames, _MarketDays(np.where(traded, returns, np.nan), volume * traded)


def _continued_benchmark(
    out: Path, benchmark: str, calendar: pd.DatetimeIndex, business: pd.DatetimeIndex, market: _MarketDays
) -> pd.DataFrame:
    """The benchmark's rows on ``business`` days, continued from its last stored close."""
    bench_close = read_field(out, benchmark, "close", calendar).ffill().iloc[-1]
    bench = _benchmark(business, market.returns, market.volume)
    scale = float(bench_close) / 3000  # _benchmark starts its index at 3000
    for column in ("open", "high", "low", "close", "vwap"):
        bench[column] = bench[column] * scale
    return bench[list(SOURCE_FIELDS)]
