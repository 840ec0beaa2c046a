"""Prefect tasks of the rolling replay; each body is one call into ``tasks.core.replay.plan*`` / ``tasks.core.features.raw``.

``train_window`` runs in whatever process the flow's task runner gives it (a process-pool or Dask
worker), so everything it needs travels in its arguments (the plan is plain data) and it reads the
replay's features from the shared store.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.core.qlib.training import qlib_step
from tasks.core.qlib.workflow_config import WorkflowConfig
from tasks.core.replay.features import FeatureHandle, ensure_features
from tasks.core.replay.plan import ReplayPlan, ReplaySpec, Window, plan_replay
from tasks.core.replay.result import ReplayRecord, build_record, combine, evaluate_combined, save_record
from tasks.core.replay.window import WindowResult, run_window


@task(name="plan replay", cache_policy=NO_CACHE)
def plan(cfg: WorkflowConfig, model_name: str, spec: ReplaySpec) -> ReplayPlan:
    """Windows (Qlib's RollingGen), truncation, replay id and registry name of the replay."""
    from registry.settings import load_settings

    with qlib_step(get_run_logger()):
        replay = plan_replay(cfg, model_name, spec, load_settings())
    get_run_logger().info("replay %s: %d windows, truncation %d days, name %s", replay.replay_id,
                          len(replay.windows), replay.truncation_days, replay.replay_name)
    return replay


# Idempotent: a second call finds the stored handler.
@task(name="build features", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def build_features(replay: ReplayPlan) -> FeatureHandle:
    """The replay's raw features, built once into the feature layer's local store."""
    from tasks.core.qlib.session import init_from_qlib_init

    logger = get_run_logger()
    with qlib_step(logger):
        init_from_qlib_init(replay.qlib_init, replay.settings)
        handle = ensure_features(replay)
    if handle.built:
        logger.info("features built in %.1f s: %s", handle.seconds, handle.path)
    else:
        logger.info("features reused: %s", handle.path)
    return handle


# Idempotent: a registered window is reloaded, never registered twice.
@task(name="train window", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE,
      task_run_name="window {window.index}")
def train_window(replay: ReplayPlan, window: Window, threads: int | None = None) -> WindowResult:
    """Train (or reload) one window, predict its test segment, register it (``threads``: see run_window)."""
    result = run_window(replay, window, threads=threads)
    get_run_logger().info("window %d: %s %s, ic %.4f", window.index, "trained" if result.trained else "reused",
                          result.model_id, result.metrics.get("ic_mean", float("nan")))
    return result


@task(name="evaluate replay", cache_policy=NO_CACHE)
def evaluate_replay(replay: ReplayPlan, results: list[WindowResult], feature_builds: int,
                    seconds: dict[str, float]) -> ReplayRecord:
    """Combine the windows' predictions, evaluate them once, record the replay."""
    from tasks.core.qlib.session import init_from_qlib_init

    logger = get_run_logger()
    with qlib_step(logger):
        init_from_qlib_init(replay.qlib_init, replay.settings)
        pred, label = combine(results)
        combined = evaluate_combined(replay, pred, label, logger)
    record = build_record(replay, results, combined, feature_builds=feature_builds, seconds=seconds)
    return save_record(record, pred, label, replay.settings)
