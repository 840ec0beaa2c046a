"""xdist workers see the controller's terminal size, not the one their pipes give them.

A worker starts with COLUMNS=80 and LINES=24 in its environment whatever the controller has, and `qmp`'s
consoles read COLUMNS once, when first imported: the CLI tests would then see tables wrapped at 80 columns
under xdist and at 160 (the width for output that is no terminal) without it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

TERMINAL_VARIABLES = ("COLUMNS", "LINES")
KEY = "qmp_terminal_environment"


def share_terminal_environment(node: Any) -> None:
    """Controller: hands a starting worker the controller's COLUMNS and LINES (or their absence)."""
    node.workerinput[KEY] = {name: os.environ.get(name) for name in TERMINAL_VARIABLES}


def adopt_terminal_environment(config: pytest.Config) -> None:
    """Worker: takes the controller's COLUMNS and LINES before any test module imports the CLI."""
    shared = getattr(config, "workerinput", {}).get(KEY)
    for name, value in (shared or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
