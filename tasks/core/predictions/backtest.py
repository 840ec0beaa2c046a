"""The paper backtest: Qlib's own backtest of the production model's strategy on a name's stored signals.

The strategy, executor and exchange settings are the model's ``port_analysis_config`` (PortAnaRecord's
``config``; PortAnaRecord's defaults without one), the span the stored days asked for (Qlib's backtest starts
a fresh account each call, so a span is run whole). The result goes through the evaluation's own portfolio
metrics (:func:`tasks.core.qlib.evaluation.portfolio_metrics`) and is cached per (name, span, data version).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from registry import ModelRegistry
from registry.errors import ModelNotFoundError
from registry.settings import Settings
from tasks.core.qlib.training import Logger

CACHE_DIR = "paper_backtests"  # under the registry directory
_log = logging.getLogger(__name__)


@dataclass
class PaperBacktest:
    """A paper backtest's span, its metrics against the benchmark and whether it came from the cache."""

    model_name: str
    first: date
    last: date
    data_version: str
    metrics: dict[str, float]
    cumulative_excess_return: dict[str, float]  # ISO day -> summed excess return after costs
    cached: bool = False


def stored_signals(registry: ModelRegistry, model_name: str, first: date | None, last: date | None) -> pd.DataFrame:
    """The name's stored scores on [first, last] as a one-column ``score`` frame indexed (datetime, instrument)."""
    stored_last = registry.last_prediction_date(model_name)
    if stored_last is None:
        raise ModelNotFoundError(f"no stored predictions for {model_name!r} yet: run `qmp predict` first")
    rows = registry.predictions(model_name, (first or date(1900, 1, 1), last or stored_last))
    if not rows:
        raise ModelNotFoundError(f"no stored predictions for {model_name!r} from {first} to {last or stored_last}")
    index = pd.MultiIndex.from_tuples([(pd.Timestamp(r.trading_date), r.instrument) for r in rows],
                                      names=["datetime", "instrument"])
    return pd.DataFrame({"score": [r.score for r in rows]}, index=index).sort_index()


def port_analysis_for(registry: ModelRegistry, model_name: str) -> dict[str, object]:
    """The production model's port_analysis_config with the dates left to the signal's span."""
    from tasks.core.predictions.live import recorded_port_analysis
    from tasks.core.qlib.evaluation import DEFAULT_PORT_ANALYSIS

    production = registry.get_production_model(model_name)
    if production is None:
        raise ModelNotFoundError(f"no production model for {model_name!r}: promote one first")
    config = recorded_port_analysis(production) or copy.deepcopy(DEFAULT_PORT_ANALYSIS)
    config.setdefault("backtest", {}).update(start_time=None, end_time=None)
    return config


def paper_backtest(
    registry: ModelRegistry, model_name: str, *, settings: Settings, provider_uri: str | Path | None = None,
    first: date | None = None, last: date | None = None, logger: Logger | None = None,
) -> PaperBacktest:
    """Qlib's backtest of the stored signals of ``model_name`` on [first, last] (cached; see the module docstring)."""
    from tasks.core.data.version import data_version
    from tasks.core.qlib.evaluation import cumulative_excess_return, portfolio_metrics
    from tasks.core.qlib.scoring import resolve_provider_uri
    from tasks.core.qlib.session import QLIB_LOCK, init_qlib

    signals = stored_signals(registry, model_name, first, last)
    provider = resolve_provider_uri(provider_uri, settings)
    days = signals.index.get_level_values("datetime")
    span = (days.min().date(), days.max().date())
    version = str(data_version(provider))
    cache = registry.registry_dir / CACHE_DIR / f"{model_name}_{span[0]}_{span[1]}_{version.replace('/', '-')}.json"
    if cache.is_file():
        return PaperBacktest(**{**json.loads(cache.read_text()), "first": span[0], "last": span[1], "cached": True})
    init_qlib(provider, settings=settings)
    with QLIB_LOCK:
        metrics, artifacts = portfolio_metrics(signals, None, None, port_analysis_for(registry, model_name),
                                               logger or _log)
    report = next(v for k, v in artifacts.items() if k.startswith("report_normal_"))
    curve = {f"{day:%Y-%m-%d}": float(value) for day, value in cumulative_excess_return(report).items()}
    result = PaperBacktest(model_name, span[0], span[1], version, metrics, curve)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(result), default=str))
    partial.replace(cache)  # a reader sees a whole cached result or none
    return result
