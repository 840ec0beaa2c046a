"""The cleanup flow on a temporary Prefect server: it archives, purges, sweeps and publishes its report."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from flows.cleanup import CleanupParameters, cleanup
from registry import ModelMetadata, ModelRegistry, ModelStatus
from tests.conftest import ON_BOTH_BACKENDS

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]

TODAY = datetime.now(UTC).date()


@pytest.fixture
def registry_env(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """The flow finds the test's registry through the same settings users set."""
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    return registry


def register(reg: ModelRegistry, trained: date) -> str:
    return reg.register_model({"weights": [1, 2]}, ModelMetadata(model_name="lgbm_alpha158", training_date=trained))


def make_orphan(root: Path) -> None:
    orphan = root / "lgbm_alpha158_v99.0.0"
    orphan.mkdir()
    (orphan / "model.pkl").write_bytes(b"x" * 64)
    stamp = time.time() - 3 * 3600
    for path in (orphan / "model.pkl", orphan):
        os.utime(path, (stamp, stamp))


def artifacts_of(flow_run_id: Any) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found}


@pytest.fixture
def run_logs_at_info() -> Any:
    """The session logs Prefect at WARNING; the flow logs the report at INFO."""
    loggers = [logging.getLogger(name) for name in ("prefect.task_runs", "prefect.flow_runs")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip(loggers, previous, strict=True):
        logger.setLevel(level)


def logged_messages(flow_run_id: Any) -> str:
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


@ON_BOTH_BACKENDS
def test_cleanup_flow_archives_sweeps_and_publishes_a_report(registry_env, run_logs_at_info):
    reg = registry_env
    stale = [register(reg, TODAY - timedelta(days=100 + i)) for i in range(3)]
    newest = register(reg, TODAY - timedelta(days=90))
    make_orphan(reg.registry_dir)

    state = cleanup(CleanupParameters(max_age_days=30, keep_last=1), return_state=True)

    report = state.result()
    assert state.is_completed()
    assert report.totals.archived == 3 and report.totals.orphans_removed == 1
    assert all(reg.get_model_info(m).status == ModelStatus.ARCHIVED for m in stale)
    assert reg.get_model_info(newest).status != ModelStatus.ARCHIVED
    flow_run_id = state.state_details.flow_run_id
    archived_event = reg.history(model_id=stale[0])[-1]
    assert (archived_event.event, archived_event.flow_run_id) == ("archived", str(flow_run_id))
    artifacts = artifacts_of(flow_run_id)
    table = artifacts["registry-cleanup"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert {"model_name": "lgbm_alpha158", "archived": 3, "purged": 0, "bytes_reclaimed": 64,
            "orphans_removed": 1} in rows
    assert "3 models trained before" in artifacts["registry-cleanup-summary"]
    assert "3 models trained before" in logged_messages(flow_run_id)


def test_cleanup_flow_dry_run_changes_nothing_but_reports(registry_env):
    reg = registry_env
    stale = [register(reg, TODAY - timedelta(days=100 + i)) for i in range(2)]
    make_orphan(reg.registry_dir)
    events_before = reg.history()

    report = cleanup(CleanupParameters(max_age_days=30, keep_last=0, purge_archived_after_days=0, dry_run=True))

    assert report.dry_run and report.totals.archived == 2 and report.totals.orphans_removed == 1
    assert reg.history() == events_before
    assert all(reg.get_model_info(m).status != ModelStatus.ARCHIVED for m in stale)
    assert (reg.registry_dir / "lgbm_alpha158_v99.0.0").exists()
