"""Evaluate a trained model on the dataset's ``test`` segment with Qlib's own functions.

The numbers equal those of Qlib's ``SigAnaRecord`` and ``PortAnaRecord`` for the same predictions.
:func:`evaluate` returns one flat dict of floats (NaN when undefined) with two daily series the registry
stores with the version: the daily IC and the cumulative excess return over the benchmark after costs.

Signal metrics (``calc_ic`` on the predictions and the raw, unprocessed label, per trading day):

- ``ic`` / ``ic_mean``: mean daily Pearson IC (SigAnaRecord's ``IC``); ``ic_std``: its standard deviation
- ``icir``: ``ic_mean / ic_std`` (``ICIR``)
- ``rank_ic``: mean daily Spearman IC (``Rank IC``); ``rank_ic_std``; ``rank_icir`` (``Rank ICIR``)

Portfolio metrics (TopkDropout backtest against the benchmark, ``risk_analysis`` at daily frequency,
Qlib's convention: returns are summed, not compounded, and annualised with 238 trading days):

- ``annualized_return``: annualised excess return over the benchmark after costs
  (PortAnaRecord's ``1day.excess_return_with_cost.annualized_return``)
- ``information_ratio``: of the excess return after costs; ``sharpe_ratio`` is the same number,
  under the name the original registry API used
- ``max_drawdown``: of the cumulative excess return after costs (<= 0; closer to 0 is better)
- ``annualized_return_without_cost``, ``information_ratio_without_cost``, ``max_drawdown_without_cost``
- ``benchmark_annualized_return``: the benchmark's own annualised return
- ``win_rate``: share of backtest days on which the portfolio beat the benchmark after costs
- ``turnover``: mean daily turnover of the portfolio
- ``test_days``: number of days with predictions in the evaluated segment

Backtest settings come from the workflow's PortAnaRecord ``config`` (or ``port_analysis_config``),
else from :data:`DEFAULT_PORT_ANALYSIS` (PortAnaRecord's own defaults: top 50, drop 5, close price,
9.5% limit, 5 bp open / 15 bp close cost, benchmark SH000300, dates from the predictions).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from qlib.backtest import backtest
from qlib.contrib.eva.alpha import calc_ic
from qlib.contrib.evaluate import risk_analysis
from qlib.data import D
from qlib.data.dataset import DatasetH
from qlib.data.dataset.handler import DataHandlerLP
from qlib.utils import get_date_by_shift
from qlib.workflow import R

from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC, EvaluationSeries
from registry.settings import Settings
from tasks.core.qlib.session import init_from_qlib_init
from tasks.core.qlib.training import Logger, qlib_step
from tasks.core.qlib.workflow_config import WorkflowConfig, fill_placeholders

METRIC_NAMES: tuple[str, ...] = (
    "ic", "ic_mean", "ic_std", "icir", "rank_ic", "rank_ic_std", "rank_icir",
    "annualized_return", "information_ratio", "sharpe_ratio", "max_drawdown",
    "annualized_return_without_cost", "information_ratio_without_cost", "max_drawdown_without_cost",
    "benchmark_annualized_return", "win_rate", "turnover", "test_days",
)  # fmt: skip
DEFAULT_PORT_ANALYSIS: dict[str, Any] = {
    "strategy": {
        "class": "TopkDropoutStrategy",
        "module_path": "qlib.contrib.strategy",
        "kwargs": {"signal": "<PRED>", "topk": 50, "n_drop": 5},
    },
    "backtest": {
        "start_time": None,
        "end_time": None,
        "account": 100_000_000,
        "benchmark": "SH000300",
        "exchange_kwargs": {
            "limit_threshold": 0.095,
            "deal_price": "close",
            "open_cost": 0.0005,
            "close_cost": 0.0015,
            "min_cost": 5,
        },
    },
}
DEFAULT_EXECUTOR: dict[str, Any] = {
    "class": "SimulatorExecutor",
    "module_path": "qlib.backtest.executor",
    "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True},
}
_log = logging.getLogger(__name__)


def predict(model: Any, dataset: DatasetH, segment: str = "test") -> pd.DataFrame:
    """The model's scores on ``segment`` as a one-column ``score`` frame (like SignalRecord's pred.pkl)."""
    pred = model.predict(dataset, segment=segment)
    return pred.to_frame("score") if isinstance(pred, pd.Series) else pred


def raw_label(dataset: DatasetH, segment: str = "test") -> pd.DataFrame:
    """The unprocessed label on ``segment`` (what SignalRecord saves as label.pkl)."""
    return dataset.prepare(segment, col_set="label", data_key=DataHandlerLP.DK_R)


def daily_ics(pred: pd.Series, label: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per trading day the Pearson and Spearman IC of ``pred`` with ``label`` (Qlib's ``calc_ic``): every IC
    the pipeline reports, evaluated or live, comes from here."""
    ic, ric = calc_ic(pred, label)
    return ic, ric


def signal_metrics(pred: pd.DataFrame, label: pd.DataFrame) -> tuple[dict[str, float], dict[str, pd.Series]]:
    """IC, ICIR, Rank IC, Rank ICIR and the daily IC series, as SigAnaRecord computes them."""
    ic, ric = daily_ics(pred.iloc[:, 0], label.iloc[:, 0])
    metrics = {
        "ic": ic.mean(),
        "ic_mean": ic.mean(),
        "ic_std": ic.std(),
        "icir": ic.mean() / ic.std(),
        "rank_ic": ric.mean(),
        "rank_ic_std": ric.std(),
        "rank_icir": ric.mean() / ric.std(),
    }
    return _floats(metrics), {"ic.pkl": ic, "ric.pkl": ric}


def portfolio_metrics(
    pred: pd.DataFrame,
    model: Any,
    dataset: DatasetH,
    port_analysis: dict[str, Any] | None,
    log: Logger = _log,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the TopkDropout backtest and Qlib's risk analysis; return metrics and report artifacts."""
    config = copy.deepcopy(port_analysis or DEFAULT_PORT_ANALYSIS)
    strategy = fill_placeholders(
        _signal_from_predictions(config["strategy"]), PRED=pred, MODEL=model, DATASET=dataset
    )
    executor = fill_placeholders(
        config.get("executor", DEFAULT_EXECUTOR), PRED=pred, MODEL=model, DATASET=dataset
    )
    settings = backtest_settings(config["backtest"], pred, log)
    log.info(
        "backtest %s..%s against %s", settings["start_time"], settings["end_time"], settings.get("benchmark")
    )
    portfolio, _ = backtest(executor=executor, strategy=strategy, **settings)
    if not portfolio:
        raise ValueError(
            "the backtest produced no portfolio report: set generate_portfolio_metrics in the executor"
        )
    freq = "1day" if "1day" in portfolio else next(iter(portfolio))  # the outermost executor's frequency
    report, _ = portfolio[freq]
    excess = report["return"] - report["bench"]
    with_cost = risk_analysis(excess - report["cost"], freq=freq)["risk"]
    without_cost = risk_analysis(excess, freq=freq)["risk"]
    bench = risk_analysis(report["bench"], freq=freq)["risk"]
    metrics = {
        "annualized_return": with_cost["annualized_return"],
        "information_ratio": with_cost["information_ratio"],
        "sharpe_ratio": with_cost["information_ratio"],
        "max_drawdown": with_cost["max_drawdown"],
        "annualized_return_without_cost": without_cost["annualized_return"],
        "information_ratio_without_cost": without_cost["information_ratio"],
        "max_drawdown_without_cost": without_cost["max_drawdown"],
        "benchmark_annualized_return": bench["annualized_return"],
        "win_rate": (excess - report["cost"] > 0).mean(),
        "turnover": report["turnover"].mean(),
    }
    analysis = pd.concat({"excess_return_without_cost": without_cost, "excess_return_with_cost": with_cost})
    return _floats(metrics), {f"report_normal_{freq}.pkl": report, f"port_analysis_{freq}.pkl": analysis}


def _signal_from_predictions(strategy: dict[str, Any]) -> dict[str, Any]:
    """Point a model-driven strategy at the predictions already made (same scores, one predict call).

    ``signal: [<MODEL>, <DATASET>]`` and the older ``model: <MODEL>, dataset: <DATASET>`` kwargs make
    Qlib predict the ``test`` segment again; ``<PRED>`` is what PortAnaRecord uses, on any segment.
    """
    kwargs = strategy.setdefault("kwargs", {})
    if kwargs.get("signal") == ["<MODEL>", "<DATASET>"] or {"model", "dataset"} <= kwargs.keys():
        kwargs.pop("model", None)
        kwargs.pop("dataset", None)
        kwargs["signal"] = "<PRED>"
    return strategy


def backtest_settings(
    backtest_config: dict[str, Any], pred: pd.DataFrame, log: Logger = _log
) -> dict[str, Any]:
    """Backtest kwargs with PortAnaRecord's date defaults; the end is kept inside the calendar."""
    settings = copy.deepcopy(backtest_config)
    dates = pred.index.get_level_values("datetime")
    if settings.get("start_time") is None:
        settings["start_time"] = dates.min()
    if settings.get("end_time") is None:
        settings["end_time"] = get_date_by_shift(dates.max(), 1)
    # Qlib's backtest needs the day after end_time in the calendar (IndexError on the last day).
    calendar = D.calendar(freq="day")
    latest = calendar[-2]
    if pd.Timestamp(settings["end_time"]) > latest:
        log.warning("backtest end_time %s is past the data; using %s", settings["end_time"], latest.date())
        settings["end_time"] = latest
    return settings


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's metrics and the daily series the registry stores with the version."""

    metrics: dict[str, float]
    series: dict[str, EvaluationSeries]


def daily_series(values: pd.Series) -> EvaluationSeries:
    """A series indexed by trading day as the registry stores it (NaN as undefined)."""
    days = pd.DatetimeIndex(values.index.get_level_values(0))
    return EvaluationSeries(dates=[d.date() for d in days], values=[float(v) for v in values.to_numpy()])


def cumulative_excess_return(report: pd.DataFrame) -> pd.Series:
    """The backtest's excess return over the benchmark after costs, summed day by day (Qlib's convention,
    the series ``annualized_return`` and ``max_drawdown`` are computed from)."""
    return (report["return"] - report["bench"] - report["cost"]).cumsum()


def evaluate(
    model: Any,
    dataset: DatasetH,
    cfg: WorkflowConfig,
    recorder_id: str | None = None,
    *,
    settings: Settings,
    logger: Logger | None = None,
    segment: str = "test",
) -> Evaluation:
    """Signal and portfolio metrics on ``segment`` with the daily IC and cumulative excess return series;
    logged into recorder ``recorder_id`` when given.

    On a segment other than ``test`` the backtest spans that segment's predictions instead of the
    workflow's backtest dates (which belong to the test segment).
    """
    log = logger or _log
    with qlib_step(logger):
        init_from_qlib_init(cfg.qlib_init, settings)
        pred = predict(model, dataset, segment)
        label = raw_label(dataset, segment)
        metrics, signal_artifacts, portfolio_artifacts = prediction_metrics(
            pred, label, model, dataset, cfg, segment, log
        )
        if recorder_id is not None:
            recorder = _recorder(recorder_id)
            recorder.log_metrics(**{k: v for k, v in metrics.items() if math.isfinite(v)})
            recorder.save_objects(**{"pred.pkl": pred, "label.pkl": label})
            recorder.save_objects(artifact_path="sig_analysis", **signal_artifacts)
            recorder.save_objects(artifact_path="portfolio_analysis", **portfolio_artifacts)
        report = next(v for k, v in portfolio_artifacts.items() if k.startswith("report_normal_"))
        series = {
            DAILY_IC: daily_series(signal_artifacts["ic.pkl"]),
            CUMULATIVE_EXCESS_RETURN: daily_series(cumulative_excess_return(report)),
        }
    return Evaluation(metrics, series)


def prediction_metrics(
    pred: pd.DataFrame,
    label: pd.DataFrame,
    model: Any,
    dataset: DatasetH,
    cfg: WorkflowConfig,
    segment: str = "test",
    log: Logger = _log,
) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
    """Signal and portfolio metrics of ``pred`` against the raw ``label`` (callers hold the Qlib step).

    The one metric code for every model compared: the candidate's evaluation and the production
    model re-scored on the candidate's window both come here. Returns (metrics, signal artifacts,
    portfolio artifacts).
    """
    port_analysis = copy.deepcopy(cfg.port_analysis or DEFAULT_PORT_ANALYSIS)
    if segment != "test":
        port_analysis["backtest"].update(start_time=None, end_time=None)
    log.info("evaluating %d predictions over %d days", len(pred), pred.index.get_level_values(0).nunique())
    signal, signal_artifacts = signal_metrics(pred, label)
    portfolio, portfolio_artifacts = portfolio_metrics(pred, model, dataset, port_analysis, log)
    metrics = {**signal, **portfolio, "test_days": float(pred.index.get_level_values("datetime").nunique())}
    log.info("metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return metrics, signal_artifacts, portfolio_artifacts


def _recorder(recorder_id: str) -> Any:
    """The Qlib recorder of an MLflow run id, whatever experiment it belongs to."""
    run = R.exp_manager.client.get_run(recorder_id)
    return R.get_recorder(recorder_id=recorder_id, experiment_id=run.info.experiment_id)


def _floats(values: dict[str, Any]) -> dict[str, float]:
    """Plain Python floats (NaN when undefined) so the dict serialises anywhere."""
    return {key: float(value) if value is not None else math.nan for key, value in values.items()}
