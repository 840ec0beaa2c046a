"""CSV import: a folder of per-instrument files becomes a Qlib directory; bad files fail with file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.data import D
from typer.testing import CliRunner

from deployments.cli.data import data_app
from registry.settings import Settings
from tasks.core.data.csv_import import CsvImportError, import_csv
from tasks.core.qlib.session import init_qlib
from tests.cli.test_qmp_models import qmp

HEADER = "date,open,high,low,close,volume,vwap,factor"
ROWS = {
    "SH600000": [
        "2022-01-04,10.0,10.5,9.8,10.2,1000,10.1,1.0",
        "2022-01-05,10.2,10.8,10.1,10.6,1200,10.5,1.0",
        "2022-01-06,,,,,,,",  # suspended
        "2022-01-07,10.6,10.9,10.3,10.4,900,10.6,1.1",
        "2022-01-10,10.4,10.4,9.9,10.0,1500,10.1,1.1",
    ],
    "SZ000001": [
        "2022-01-05,20.0,20.4,19.9,20.1,300,20.2,2.0",
        "2022-01-06,20.1,20.3,19.5,19.6,400,19.9,2.0",
        "2022-01-07,19.6,19.9,19.2,19.8,350,19.5,2.0",
    ],
    "SH000300": [f"2022-01-{day:02d},4000,4010,3990,{4000 + day},1e9,4000,1" for day in (4, 5, 6, 7, 10)],
}


def write_csvs(folder: Path, rows: dict[str, list[str]], header: str = HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, lines in rows.items():
        (folder / f"{symbol}.csv").write_text("\n".join([header, *lines]) + "\n")
    return folder


def test_imported_directory_returns_exactly_the_csv_values(tmp_path: Path, qlib_settings: Settings) -> None:
    report = import_csv(write_csvs(tmp_path / "csv", ROWS), tmp_path / "qlib")
    assert (report.instruments, report.days, report.benchmark) == (2, 5, "SH000300")
    assert report.universes == ("all", "csi300")
    init_qlib(tmp_path / "qlib", settings=qlib_settings)
    got = D.features(["SH600000"], ["$close", "$volume", "$factor", "$change"]).droplevel("instrument")
    closes = [10.2, 10.6, np.nan, 10.4, 10.0]
    np.testing.assert_array_equal(got["$close"].to_numpy(), np.array(closes, dtype=np.float32))
    np.testing.assert_array_equal(
        got["$volume"].to_numpy(), np.array([1000, 1200, np.nan, 900, 1500], np.float32)
    )
    change = np.array([np.nan, 10.6 / 10.2 - 1, np.nan, 10.4 / 10.6 - 1, 10.0 / 10.4 - 1], dtype=np.float32)
    np.testing.assert_allclose(got["$change"].to_numpy(), change, rtol=1e-6)
    assert D.list_instruments(D.instruments("csi300"), as_list=True) == ["SH600000", "SZ000001"]
    late = D.features(["SZ000001"], ["$close"]).droplevel("instrument")
    assert late.index[0] == pd.Timestamp("2022-01-05")


def test_missing_optional_columns_get_factor_one_and_no_vwap(tmp_path: Path) -> None:
    rows = {"AAA": ["2022-01-04,1,2,0.5,1.5,10", "2022-01-05,1.5,2,1,1.8,12"]}
    import_csv(
        write_csvs(tmp_path / "csv", rows, "date,open,high,low,close,volume"), tmp_path / "q", benchmark=None
    )
    factor = np.frombuffer((tmp_path / "q/features/aaa/factor.day.bin").read_bytes(), dtype="<f4")
    vwap = np.frombuffer((tmp_path / "q/features/aaa/vwap.day.bin").read_bytes(), dtype="<f4")
    assert factor.tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(vwap[1:]).all()


@pytest.mark.parametrize(
    ("lines", "header", "message"),
    [
        (["2022-01-04,1,2,0.5,1.5,10"], "date,open,high,low,volume", "line 1: missing column(s) close"),
        (
            ["2022-01-04,1,2,0.5,1.5,10", "2022-01-05,1,2,0.5,abc,10"],
            None,
            "line 3: bad value 'abc' in column 'close'",
        ),
        (["2022-01-04,1,2,0.5,1.5,10", "2022/01/05,1,2,0.5,1.5,10"], None, "line 3: bad date '2022/01/05'"),
        (
            ["2022-01-05,1,2,0.5,1.5,10", "2022-01-04,1,2,0.5,1.5,10"],
            None,
            "line 3: date 2022-01-04 comes after",
        ),
        (
            ["2022-01-04,1,2,0.5,1.5,10", "2022-01-04,1,2,0.5,1.5,10"],
            None,
            "line 3: duplicate date 2022-01-04 (first on line 2)",
        ),
        (["2022-01-04,1,2,0.5,1.5,10", "2022-01-05,1,2,0.5,1.5"], None, "line 3: expected 6 fields, got 5"),
        (["2022-01-04,1,2,0.5,1.5,10", "2022-01-05,1,2,0.5,-1.5,10"], None, "line 3: non-positive price"),
        (["2022-01-04,1,0.4,0.5,1.5,10"], None, "line 2: high below low"),
        ([], None, "no data rows"),
    ],
)
def test_bad_csv_fails_naming_file_and_line(
    tmp_path: Path, lines: list[str], header: str | None, message: str
) -> None:
    src = write_csvs(tmp_path / "csv", {"BAD": lines}, header or "date,open,high,low,close,volume")
    with pytest.raises(CsvImportError) as caught:
        import_csv(src, tmp_path / "q", benchmark=None)
    assert str(caught.value).startswith(f"{src / 'BAD.csv'}")
    assert message in str(caught.value)


def test_a_folder_without_csv_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CsvImportError, match=r"no \*\.csv files found"):
        import_csv(tmp_path, tmp_path / "q")


def test_cli_import_reports_bad_rows_in_one_line_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_csvs(
        tmp_path / "csv", {"BAD": ["2022-01-04,1,2,0.5,x,10"]}, "date,open,high,low,close,volume"
    )
    code, out, err = qmp("data", "import-csv", str(src), "--out", str(tmp_path / "q"), capsys=capsys,
                         monkeypatch=monkeypatch)
    assert code == 1
    assert "BAD.csv line 2: bad value 'x' in column 'close'" in " ".join(err.split())
    assert "Traceback" not in out + err
    assert not (tmp_path / "q" / "features").exists()  # nothing half-written


def test_cli_import_and_synth_write_valid_directories(tmp_path: Path) -> None:
    runner = CliRunner()
    imported = runner.invoke(
        data_app, ["import-csv", str(write_csvs(tmp_path / "csv", ROWS)), "--out", str(tmp_path / "a")]
    )
    assert imported.exit_code == 0, imported.output
    synth = runner.invoke(
        data_app, ["synth", "--out", str(tmp_path / "b"), "--instruments", "4", "--start", "2022-01-01"]
    )
    assert synth.exit_code == 0, synth.output
    for folder in ("a", "b"):
        checked = runner.invoke(data_app, ["validate", str(tmp_path / folder), "--benchmark", "SH000300"])
        assert checked.exit_code == 0, checked.output
