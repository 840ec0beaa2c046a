"""The rolling replay: plan windows -> build features once -> train windows in parallel -> combine -> evaluate once."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from flows.reporting import artifact_key
from flows.retrain import ModelName, WorkflowSource
from flows.run_names import stamped_run_name
from tasks import replay_steps as steps
from tasks.core.replay.features import FeatureHandle
from tasks.core.replay.plan import ReplayPlan, ReplaySpec
from tasks.core.replay.result import ReplayRecord, window_seconds
from tasks.core.replay.window import WindowResult
from tasks.core.timing import timed

LOCAL_DASK = "local"


class ReplayRunner(BaseModel):
    """Where the windows run: this process (1 worker), a process pool, or a Dask cluster."""

    workers: int = Field(1, ge=1, le=512, title="Workers",
                         description="Windows trained at once (processes; Dask workers for a local cluster).")
    dask_address: str | None = Field(
        None, title="Dask scheduler",
        description="tcp://host:8786 of a running Dask scheduler, or 'local' for a LocalCluster of `workers` processes.",
    )


def task_runner_for(runner: ReplayRunner) -> Any:
    """Prefect's task runner for ``runner``: Dask when an address is given, else processes, else this process."""
    if runner.dask_address:
        from prefect_dask import DaskTaskRunner

        if runner.dask_address == LOCAL_DASK:
            # Processes, one thread each: Qlib is not thread-safe.
            return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
                "n_workers": runner.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
            })
        return DaskTaskRunner(address=runner.dask_address)
    if runner.workers > 1:
        return ProcessPoolTaskRunner(max_workers=runner.workers)
    return ThreadPoolTaskRunner(max_workers=1)


def threads_per_window(runner: ReplayRunner) -> int | None:
    """Native threads (BLAS, OpenMP) a window may use: the cores shared out among the worker processes, one on
    a Dask worker (one thread each); None (the libraries' own default) when the windows run in this process.
    Without a limit every worker starts a thread per core and the workers slow each other down."""
    if runner.dask_address:
        return 1
    if runner.workers > 1:
        return max(1, (os.cpu_count() or 1) // runner.workers)
    return None


@flow(name="train windows")
def train_windows(replay: ReplayPlan, threads: int | None = None) -> list[WindowResult]:
    """Every window as a task on this flow's task runner; results in window order."""
    futures = [steps.train_window.submit(replay, window, threads) for window in replay.windows]
    return [future.result() for future in futures]


@flow(name="rolling", flow_run_name=stamped_run_name("rolling", "model"), log_prints=True)
def rolling(
    model_name: ModelName,
    workflow: WorkflowSource,
    replay: ReplaySpec = ReplaySpec(),
    runner: ReplayRunner = ReplayRunner(),
) -> ReplayRecord:
    """Replay a workflow over history as Qlib's Rolling does: every window a registry version, one evaluation."""
    with timed() as clock:
        plan = steps.plan(workflow.load(), model_name, replay)
        features = steps.build_features(plan)
        results, windows_wall = run_windows(plan, runner)
        seconds = replay_seconds(features, windows_wall, results)
        record = steps.evaluate_replay(plan, results, int(features.built), seconds)
    record.seconds["total"] = round(clock.seconds, 3)
    publish_replay(model_name, record)
    return record


def run_windows(plan: ReplayPlan, runner: ReplayRunner) -> tuple[list[WindowResult], float]:
    """Train every window on ``runner``; (results in window order, wall-clock seconds)."""
    with timed() as clock:
        results = train_windows.with_options(task_runner=task_runner_for(runner))(plan, threads_per_window(runner))
    return results, clock.seconds


def replay_seconds(features: FeatureHandle, windows_wall: float, results: list[WindowResult]) -> dict[str, float]:
    """Where the replay's time went: the feature build, the windows' wall clock and their summed steps."""
    return {
        "features_build": round(features.seconds, 3),
        "windows_wall": round(windows_wall, 3),
        **{f"windows_{k}": v for k, v in window_seconds(results).items()},
    }


def publish_replay(model_name: str, record: ReplayRecord) -> None:
    """The replay's table as a Prefect artifact, and its summary in the log."""
    create_table_artifact(key=artifact_key("replay", model_name), table=record.table(),
                          description=f"Replay {record.replay_id} of {model_name}: {len(record.windows)} windows")
    get_run_logger().info(
        "replay %s: %d windows (%d trained, %d reused), combined ic %.4f", record.replay_id, len(record.windows),
        record.trained_windows, record.reused_windows, record.combined.get("ic_mean", float("nan")),
    )
