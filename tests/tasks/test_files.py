"""A file replaced whole is the old one or the new one, and a failed write leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.files import write_atomically


@pytest.mark.parametrize("durable", [False, True])
def test_a_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "calendar.txt"
    target.write_text("old\n")
    write_atomically(target, lambda p: p.write_text("new\n"), durable=durable)
    assert target.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["calendar.txt"]


def test_a_write_that_fails_halfway_keeps_the_old_file_and_removes_its_part(tmp_path: Path) -> None:
    target = tmp_path / "replay.json"
    target.write_text("old\n")

    def fails_halfway(path: Path) -> None:
        path.write_text("par")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, fails_halfway, durable=True)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["replay.json"]
