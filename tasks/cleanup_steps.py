"""Prefect tasks for the cleanup flow: each body is one call into the registry or `registry.retention`."""

from __future__ import annotations

from datetime import timedelta

from prefect import task
from prefect.runtime import flow_run

from registry.retention import CleanupPolicy, CleanupResult, OrphanSweepResult
from registry.settings import load_settings
from tasks.core.lifecycle import open_registry


def _flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


# Retrying is safe: a second run finds nothing left to archive or purge.
@task(name="archive stale models", retries=2, retry_delay_seconds=5)
def archive_stale_models(policy: CleanupPolicy) -> CleanupResult:
    return open_registry(load_settings()).archive_stale(**policy.model_dump(), actor="cleanup flow", flow_run_id=_flow_run_id())


@task(name="sweep orphan artifacts", retries=2, retry_delay_seconds=5)
def sweep_orphan_artifacts(grace_period: timedelta, dry_run: bool) -> OrphanSweepResult:
    return open_registry(load_settings()).sweep_orphans(grace_period=grace_period, dry_run=dry_run)

