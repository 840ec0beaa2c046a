"""`qmp rolling` refuses bad options with one line before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_qmp_models import qmp
from tests.replay_data import BASELINE


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--kind", "diagonal", "--kind must be expanding or sliding"),
    ("--processors", "sometimes", "--processors must be refit or fixed"),
    ("--step", "0", "--step"),
])
def test_bad_replay_options_are_refused_with_one_line(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = qmp("rolling", "--config", str(BASELINE), "--model-name", "m", option, value,
                         capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    assert message in out + err and "Traceback" not in out + err


def test_a_missing_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = qmp("rolling", "--config", str(tmp_path / "nope.yaml"), "--model-name", "m",
                         capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == "" and err.count("\n") == 1 and "nope.yaml" in err
