"""Flow run names: kind, model name and the UTC start to the second, so two runs of a day never share a name
in the Prefect UI's runs list and the list still reads at a glance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prefect.runtime import flow_run


def stamped_run_name(kind: str, default: str) -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``{kind}-{model_name or default}-{YYYY-mm-dd-HHMMSS}``."""

    def run_name() -> str:
        name = flow_run.parameters.get("model_name") or default
        return f"{kind}-{name}-{datetime.now(UTC):%Y-%m-%d-%H%M%S}"

    return run_name
