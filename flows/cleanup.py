"""The nightly cleanup flow: archive stale models, purge long-archived files, sweep orphans, report."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, get_run_logger
from pydantic import Field

from flows.approval import sweep_expired_approvals
from flows.reporting import cleanup_markdown, publish_cleanup
from registry.retention import CleanupPolicy, CleanupReport, summarize
from tasks.cleanup_steps import archive_stale_models, sweep_orphan_artifacts


class CleanupParameters(CleanupPolicy):
    """The form the Prefect UI shows for a cleanup run."""

    orphan_grace_hours: float = Field(
        1.0, ge=0, description="Leave orphan artifact directories younger than this (a registration may be in flight)."
    )

    def policy(self) -> CleanupPolicy:
        return CleanupPolicy(**self.model_dump(include=set(CleanupPolicy.model_fields)))


@flow(name="cleanup", description="Time out expired approvals, archive stale non-production models, purge old artifacts, sweep orphans.")
def cleanup(params: CleanupParameters = CleanupParameters()) -> CleanupReport:
    if not params.dry_run:
        sweep_expired_approvals()  # a suspended run holds no process to notice its own deadline
    result = archive_stale_models(params.policy())
    sweep = sweep_orphan_artifacts(timedelta(hours=params.orphan_grace_hours), params.dry_run)
    report = summarize(result, sweep)
    publish_cleanup(report)
    get_run_logger().info("%s", cleanup_markdown(report))
    return report
