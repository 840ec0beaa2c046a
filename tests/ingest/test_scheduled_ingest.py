"""The ingest flow as the ingest-daily deployment runs it (no source parameter): the workspace's feed folder. Not
there yet: the run completes saying where to put files. Nothing new: it completes with one line. A source that is
given (parameter or QMP_INGEST_SOURCE) and missing fails the run in one line, before any task runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.states import State

from flows.ingest import ingest
from tasks.core.data.version import data_version
from tests.ingest.ingest_data import NEW_DAYS, STORED_DAYS, new_rows, stored_dir, write_table

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace as after `make demo`: a registry and a data directory in the settings, no feed configured."""
    monkeypatch.setenv("QMP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("QMP_PROVIDER_URI", str(stored_dir(tmp_path)))
    for key in ("QMP_DATABASE_URL", "QMP_INGEST_SOURCE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _task_runs(state: State) -> int:
    with get_client(sync_client=True) as client:
        return len(client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))))


def test_without_the_workspace_feed_folder_the_run_completes_and_says_where_to_put_files(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMP_PROVIDER_URI")  # nothing configured at all is not an error either
    state = ingest(return_state=True)
    assert state.is_completed() and state.result() is None
    assert state.message and state.message.startswith(f"no feed yet: put per-instrument CSV/Parquet files in "
                                                      f"{workspace / 'home' / 'incoming'} ")
    assert _task_runs(state) == 0


def test_a_given_source_that_is_missing_fails_the_run_in_one_line_before_any_task(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = data_version(workspace / "qlib")
    state = ingest(source="data/incoming", return_state=True)
    assert state.is_failed()
    assert state.message == f"data/incoming: no such folder or file (relative to the working directory {workspace})"
    assert _task_runs(state) == 0
    monkeypatch.setenv("QMP_INGEST_SOURCE", str(workspace / "feed"))  # the setting is as explicit as the parameter
    state = ingest(return_state=True)
    assert state.is_failed() and state.message == f"{workspace / 'feed'}: no such folder or file"
    assert data_version(workspace / "qlib") == before


def test_an_empty_feed_folder_or_one_with_only_stored_days_completes_with_nothing_new(workspace: Path) -> None:
    folder = workspace / "home" / "incoming"
    folder.mkdir(parents=True)
    before = data_version(workspace / "qlib")
    state = ingest(return_state=True)
    assert state.is_completed()
    assert state.message == (f"nothing new in {folder}: no trading days after 2024-09-27 "
                             f"({(workspace / 'qlib').resolve()} unchanged)")
    assert state.result().days_added == 0
    write_table(new_rows(STORED_DAYS), folder / "rows.csv")
    state = ingest(source=str(folder / "rows.csv"), return_state=True)
    assert state.is_completed() and state.message.startswith(f"nothing new in {folder / 'rows.csv'}: ")
    assert data_version(workspace / "qlib") == before


def test_per_instrument_files_in_the_workspace_feed_folder_are_ingested(workspace: Path) -> None:
    folder = workspace / "home" / "incoming"
    folder.mkdir(parents=True)
    for symbol, rows in new_rows().groupby("instrument"):
        rows.drop(columns="instrument").assign(date=rows["date"].dt.strftime("%Y-%m-%d")).to_csv(
            folder / f"{symbol}.csv", index=False)
    state = ingest(return_state=True)
    assert state.is_completed() and state.result().days_added == len(NEW_DAYS)
    assert state.message == (f"{len(NEW_DAYS)} days, 9 rows added to {(workspace / 'qlib').resolve()}; data version "
                             f"{data_version(workspace / 'qlib')}")
