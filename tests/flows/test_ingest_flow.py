"""The ingest flow: a source's new days added, the data version recorded with the flow run, the validation table
published as an artifact; a bad source fails the run with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.ingest import ingest
from registry import ModelRegistry
from tasks.core.data.version import data_version
from tests.ingest.ingest_data import NEW_DAYS, new_rows, stored_dir, write_table

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    return tmp_path


def test_the_ingest_flow_adds_the_days_records_the_flow_run_and_publishes_the_report(workspace: Path) -> None:
    out = stored_dir(workspace)
    table = write_table(new_rows(), workspace / "new.parquet")
    state = ingest(source=str(table), data_dir=str(out), return_state=True)
    outcome = state.result()
    assert outcome.days_added == len(NEW_DAYS) and outcome.data_version == str(data_version(out))
    (record,) = ModelRegistry(workspace / "registry").data_versions(outcome.data_dir)
    assert record.flow_run_id == str(state.state_details.flow_run_id)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-validation"])))
    assert any(artifact.flow_run_id == state.state_details.flow_run_id for artifact in artifacts)


def test_a_gap_fails_the_ingest_flow_and_writes_nothing(workspace: Path) -> None:
    out = stored_dir(workspace)
    before = data_version(out)
    table = write_table(new_rows(NEW_DAYS[1:]), workspace / "gap.parquet")
    state = ingest(source=str(table), data_dir=str(out), return_state=True)
    assert state.is_failed() and "trading days missing in the source" in str(state.message)
    assert data_version(out) == before
