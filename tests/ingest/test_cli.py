"""`qmp data ingest` and `qmp data history` as a user runs them: the report printed, the data version recorded,
bad input in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry import ModelRegistry
from tasks.core.data.ingest.record import data_dir_key
from tasks.core.data.version import data_version
from tests.cli.test_qmp_models import qmp
from tests.ingest.ingest_data import NEW_DAYS, new_rows, stored_dir, write_table


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    for key in ("QMP_DATABASE_URL", "QMP_PROVIDER_URI", "PREFECT_API_URL"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_ingest_prints_the_summary_records_a_data_version_and_history_lists_it(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = stored_dir(workspace)
    table = write_table(new_rows(), workspace / "new.csv")
    code, printed, err = qmp("data", "ingest", str(table), "--into", str(out), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert f"ingested 9 rows over 3 days (2024-09-30..{NEW_DAYS[-1]:%Y-%m-%d}) for 3 instruments" in printed
    assert f"data version {data_version(out)}" in printed
    records = ModelRegistry(workspace / "registry").data_versions(data_dir_key(out))
    assert len(records) == 1 and records[0].days_added == 3 and records[0].source == f"table:{table}"
    assert records[0].validation["checks"]["rows on non-trading days"]["count"] == 0
    code, printed, _ = qmp("data", "ingest", str(table), "--into", str(out), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "no new trading days after 2024-10-09" in printed
    code, printed, _ = qmp("data", "history", str(out), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and data_version(out).fingerprint in printed and "2024-10-09" in printed
    code, printed, _ = qmp("data", "history", str(out), "--json", capsys=capsys, monkeypatch=monkeypatch)
    (listed,) = json.loads(printed)
    assert code == 0 and listed["fingerprint"] == data_version(out).fingerprint and listed["days_added"] == 3
    assert listed["calendar_end"] == "2024-10-09" and listed["source"] == f"table:{table}"


def test_a_gap_is_one_line_exit_1_and_nothing_written(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = stored_dir(workspace)
    before = data_version(out)
    table = write_table(new_rows(NEW_DAYS[1:]), workspace / "gap.csv")
    code, _, err = qmp("data", "ingest", str(table), "--into", str(out), capsys=capsys, monkeypatch=monkeypatch)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "trading days missing in the source: 1, first 2024-09-30" in lines[0]
    assert data_version(out) == before


def test_a_missing_source_is_one_line_and_an_emptied_feed_folder_is_nothing_new(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = stored_dir(workspace)
    before = data_version(out)
    monkeypatch.chdir(workspace)
    code, _, err = qmp("data", "ingest", "data/incoming", "--into", str(out), capsys=capsys, monkeypatch=monkeypatch)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and lines == [f"error: data/incoming: no such folder or file (relative to the working directory "
                                   f"{workspace})"]
    (workspace / "feed").mkdir()
    code, printed, err = qmp("data", "ingest", "feed", "--into", str(out), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "no new trading days after 2024-09-27" in printed, err
    assert data_version(out) == before
    code, _, err = qmp("data", "ingest", "feed", "--into", "new", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and "no *.csv files found" in err and not (workspace / "new").exists()


def test_a_synthetic_feed_is_ingested_on_the_calendar_the_synthetic_directory_declares(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, feed = workspace / "synth", workspace / "feed.parquet"
    assert qmp("data", "synth", str(data), "--instruments", "6", "--start", "2022-01-01", "--end", "2022-06-30",
               capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    before = data_version(data)
    code, printed, err = qmp("data", "synth", str(data), "--append-until", "2022-07-08", "--feed", str(feed),
                             capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert data_version(data) == before and feed.is_file()
    code, printed, err = qmp("data", "ingest", str(feed), "--into", str(data), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "calendar synthetic" in printed and "..2022-07-08)" in printed


def test_two_concurrent_ingests_into_one_directory_never_both_write(workspace: Path) -> None:
    import os
    import subprocess
    import sys

    out = stored_dir(workspace)
    table = write_table(new_rows(), workspace / "new.csv")
    env = {**os.environ, "QMP_REGISTRY_DIR": str(workspace / "registry"), "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-c", "from deployments.cli import main; main()", "data", "ingest", str(table),
               "--into", str(out)]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    wrote = [printed for code, printed, _ in outputs if code == 0 and "ingested 9 rows" in printed]
    others = [(code, printed, err) for code, printed, err in outputs if not (code == 0 and "ingested 9 rows" in printed)]
    assert len(wrote) == 1, outputs
    (code, printed, err), = others
    assert (code == 1 and "another ingest is writing this directory" in err) or \
        (code == 0 and "no new trading days" in printed), outputs
    assert ModelRegistry(workspace / "registry").data_versions(data_dir_key(out))[0].days_added == 3


def test_an_ingest_records_its_data_version_before_another_ingest_can_take_the_directory(workspace: Path) -> None:
    from tasks.core.data.ingest.commit import IngestBusyError
    from tasks.core.data.ingest.operation import ingest
    from tasks.core.data.ingest.record import ingest_recorded
    from tasks.core.data.ingest.sources import Source

    out = stored_dir(workspace)
    source = Source("table", str(write_table(new_rows(), workspace / "new.csv")))
    registry = ModelRegistry(workspace / "registry")
    refused: list[str] = []

    def registry_while_a_second_ingest_is_tried() -> ModelRegistry:
        with pytest.raises(IngestBusyError) as busy:
            ingest(source, out)
        refused.append(str(busy.value))
        return registry

    result, record = ingest_recorded(registry_while_a_second_ingest_is_tried, source, out)
    assert result.days_added == 3 and record is not None and record.days_added == 3
    assert refused and "another ingest is writing this directory" in refused[0]
    again, second = ingest_recorded(lambda: registry, source, out)
    assert again.days_added == 0 and second is None
    assert [r.days_added for r in registry.data_versions(data_dir_key(out))] == [3]
