"""Keeps the tests that share a costly fixture on one xdist worker (`--dist loadgroup`).

pytest-xdist's own loadgroup reads the group from a suffix it writes into each test's node id, which pytest 9.2
no longer lets it change (pytest-dev/pytest-xdist#1386): the groups were silently ignored. Here the workers
write each test's group to a file during collection, and the controller's scheduler reads the files instead.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

GROUPS_DIR_KEY = "qmp_xdist_groups_dir"


def share_groups_dir(config: pytest.Config, node: Any) -> None:
    """Controller: tells a starting worker where to write its tests' groups."""
    if not hasattr(config, "_qmp_groups_dir"):
        config._qmp_groups_dir = tempfile.mkdtemp(prefix="qmp-xdist-groups-")  # type: ignore[attr-defined]
    node.workerinput[GROUPS_DIR_KEY] = config._qmp_groups_dir  # type: ignore[attr-defined]


def remove_groups_dir(config: pytest.Config) -> None:
    """Controller, at the end: the groups' files are no longer needed."""
    directory = getattr(config, "_qmp_groups_dir", None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def write_groups(config: pytest.Config, groups: dict[str, str]) -> None:
    """Worker: the group of each grouped test, by node id, for the controller's scheduler."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or GROUPS_DIR_KEY not in workerinput:
        return
    target = Path(workerinput[GROUPS_DIR_KEY]) / f"{workerinput['workerid']}.json"
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(groups))
    os.replace(partial, target)  # the controller never reads a half-written file


class GroupScheduling(LoadScopeScheduling):
    """Load scheduling in which a test's scope is its group (if it has one) or the test itself."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:  # first called once every worker has collected, so the files are complete
            directory = Path(getattr(self.config, "_qmp_groups_dir", ""))
            self._groups = {}
            for written in sorted(directory.glob("*.json")) if directory.name else ():
                self._groups.update(json.loads(written.read_text()))
        return self._groups.get(nodeid, nodeid)
