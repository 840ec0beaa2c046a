"""`qmp rolling --trigger drift` refuses a rule or window that makes no sense with one line, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_qmp_models import qmp
from tests.replay_data import BASELINE


@pytest.mark.parametrize(("options", "message"), [
    (["--trigger", "drift", "--window", "0"], "error: drift rule window=0: Input should be greater than or equal to 2"),
    (["--trigger", "drift", "--z", "0"], "error: drift rule z=0.0: Input should be greater than 0"),
    (["--trigger", "drift", "--window", "5", "--min-days", "8"], "error: min_days 8 is larger than the window of 5 days"),
    (["--trigger", "drift", "--test-days", "1"], "error: test_days: Input should be greater than or equal to 2"),
    (["--trigger", "often"], "error: --trigger must be step or drift, got 'often'"),
    (["--z", "2"], "error: --window, --z, --floor, --min-days and --test-days apply to --trigger drift"),
])
def test_a_drift_replay_with_a_senseless_rule_is_refused_with_one_line_and_runs_nothing(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    code, out, err = qmp("rolling", "--config", str(BASELINE), "--model-name", "m", *options,
                         capsys=capsys, monkeypatch=monkeypatch)
    assert (code, out, err.strip()) == (1, "", message)
    assert not (tmp_path / "registry").exists()


def test_a_drift_replay_of_an_unknown_config_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = qmp("rolling", "--config", str(tmp_path / "nope.yaml"), "--model-name", "m", "--trigger", "drift",
                         capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == "" and err.count("\n") == 1 and "nope.yaml" in err
