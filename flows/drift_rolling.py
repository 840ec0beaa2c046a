"""The drift-triggered replay beside the fixed-step one: what a drift policy would have earned over the same period.

Recipe: the fixed-step replay (the ``rolling`` flow, as a subflow) -> the same plan -> the drift replay
(sequential: the next window depends on when the rule fires) -> both, side by side, as one table.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.reporting import artifact_key
from flows.retrain import ModelName, WorkflowSource
from flows.rolling import ReplayRunner, rolling
from flows.run_names import stamped_run_name
from tasks import drift_replay_steps as drift_steps
from tasks import replay_steps as steps
from tasks.core.replay.drift_plan import DriftReplaySpec
from tasks.core.replay.drift_result import DriftComparison
from tasks.core.replay.plan import ReplaySpec


@flow(name="rolling on drift", flow_run_name=stamped_run_name("rolling-drift", "model"), log_prints=True)
def drift_rolling(
    model_name: ModelName,
    workflow: WorkflowSource,
    replay: ReplaySpec = ReplaySpec(),
    drift: DriftReplaySpec = DriftReplaySpec(),
    runner: ReplayRunner = ReplayRunner(),
) -> DriftComparison:
    """Replay the drift rule over the fixed-step replay's period: retrain only when it fires; compare both."""
    fixed = rolling(model_name=model_name, workflow=workflow, replay=replay, runner=runner)
    plan = steps.plan(workflow.load(), model_name, replay)
    record = drift_steps.replay_drift_policy(plan, drift, fixed.replay_id)
    comparison = DriftComparison(drift=record, fixed=fixed)
    publish_comparison(model_name, comparison)
    return comparison


def publish_comparison(model_name: str, comparison: DriftComparison) -> None:
    """The two policies as a Prefect table artifact, and the drift replay's summary in the log."""
    drift = comparison.drift
    create_table_artifact(key=artifact_key("drift-replay", model_name), table=comparison.rows(),
                          description=f"Drift replay {drift.replay_id} of {model_name} beside fixed-step replay "
                                      f"{comparison.fixed.replay_id}")
    get_run_logger().info("drift replay %s: %d retrains (fixed step: %d), combined ic %.4f (fixed step: %.4f)",
                          drift.replay_id, drift.retrains, len(comparison.fixed.windows) - 1,
                          drift.combined.get("ic_mean", float("nan")),
                          comparison.fixed.combined.get("ic_mean", float("nan")))
