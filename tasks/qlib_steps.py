"""Prefect tasks for the Qlib steps; each body is one call into ``tasks.core.qlib.training`` / ``tasks.core.qlib.evaluation``.

Datasets and models are large in-memory objects, so these tasks never hash their inputs for caching.
Several of them may run at once on Prefect's thread pool; the plain functions serialise the Qlib
work behind one process-wide lock (Qlib's recorder is not thread-safe).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from qlib.data.dataset import DatasetH

from registry import ModelInfo
from registry.settings import load_settings
from tasks.core.approvals import champion
from tasks.core.approvals.champion import ChampionScore
from tasks.core.qlib import evaluation, training
from tasks.core.qlib.training import TrainResult
from tasks.core.qlib.workflow_config import WorkflowConfig
from tasks.core.windows import schedule
from tasks.core.windows.schedule import ResolvedRun, WindowSettings


# Idempotent: it only reads the data directory's calendar and files' sizes.
@task(name="resolve windows", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def resolve_windows(cfg: WorkflowConfig, windows: WindowSettings) -> ResolvedRun:
    """The data version, the configuration hash and (rolling) the window on the data calendar."""
    run = schedule.resolve_run(cfg, windows, qlib_settings=load_settings(), logger=get_run_logger())
    get_run_logger().info(
        "data version %s; windows %s%s", run.data_version, windows.describe(),
        f": {run.window.describe()}" if run.window else "",
    )  # fmt: skip
    return run


# Idempotent: it only reads the data directory.
@task(name="prepare dataset", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def prepare_dataset(cfg: WorkflowConfig) -> DatasetH:
    """Build the workflow's Qlib dataset once; training and evaluation reuse it."""
    return training.prepare_dataset(cfg, load_settings(), logger=get_run_logger())


# No retries: each attempt opens a new recorder run, and a failed fit rarely succeeds on retry.
@task(name="train model", cache_policy=NO_CACHE)
def train_model(cfg: WorkflowConfig, dataset: DatasetH, experiment_name: str) -> TrainResult:
    """Fit the workflow's model as a Qlib recorder run of ``experiment_name``."""
    return training.train_model(cfg, dataset, experiment_name, logger=get_run_logger(), settings=load_settings())


# Idempotent: re-running logs the same metrics and overwrites the same artifacts.
@task(name="evaluate model", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def evaluate_model(
    model: Any, dataset: DatasetH, cfg: WorkflowConfig, recorder_id: str | None = None, segment: str = "test"
) -> evaluation.Evaluation:
    """IC / Rank IC and TopkDropout backtest metrics on ``segment`` with the daily IC and cumulative excess
    return series, logged into the recorder."""
    return evaluation.evaluate(model, dataset, cfg, recorder_id, settings=load_settings(), logger=get_run_logger(),
                               segment=segment)


# Idempotent: it only reads the production model and the data.
@task(name="re-score production on the window", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def rescore_production(
    production: ModelInfo, cfg: WorkflowConfig, dataset: DatasetH, segment: str = "test",
    candidate: ModelInfo | None = None,
) -> ChampionScore:
    """Production's metrics on the candidate's evaluation segment (the days it never saw), scored with its own
    dataset state; ``candidate``'s saved predictions score it on the same days when the window is restricted."""
    logger = get_run_logger()
    candidate_pred = champion.recorded_predictions(candidate) if candidate is not None else None
    score = champion.score_production_on_window(production, cfg, dataset, segment, logger=logger,
                                                settings=load_settings(), candidate_pred=candidate_pred)
    if score.note:
        logger.info(score.note)
    if score.error:
        logger.warning("production %s could not be scored on %s..%s: %s", production.model_id, *score.window, score.error)
    else:
        logger.info("production %s re-scored on %s..%s in %.1f s", production.model_id, *score.window, score.seconds)
    return score
