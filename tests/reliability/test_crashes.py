"""A registering (or deleting) process killed with SIGKILL at every step leaves a consistent registry.

Whatever the step, every row still has its verified artifact and history, a leftover directory is an orphan
the sweep removes, and the next registration of the same name works.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from registry import ModelMetadata, ModelRegistry
from tests.reliability.consistency import assert_registry_consistent, orphan_entries

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NAME = "crashy"

# step -> (rows the crashed call leaves, whether it leaves an orphan on disk)
OUTCOMES = {
    "after_staging": (0, True),
    "before_rename": (0, True),
    "after_rename": (0, True),
    "before_commit": (0, True),
    "after_commit": (1, False),
    "delete_after_commit": (0, True),
}


def run_child_until_killed(registry_dir: Path, database_url: str, step: str) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_child", str(registry_dir), database_url, step, NAME],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, f"child was not killed at {step}: {child.stderr[-2000:]}"


@pytest.mark.parametrize("step", list(OUTCOMES))
def test_registration_killed_at_each_step_leaves_a_consistent_registry_and_sweepable_orphans(
    tmp_path: Path, database_url: str, step: str
) -> None:
    registry_dir = tmp_path / "registry"
    with ModelRegistry(registry_dir, database_url) as reg:
        survivor = reg.register_model({"survivor": True}, ModelMetadata(model_name=NAME))
        reg.set_production_model(survivor)

    run_child_until_killed(registry_dir, database_url, step)

    rows_left, orphan_left = OUTCOMES[step]
    with ModelRegistry(registry_dir, database_url) as reg:
        models = reg.list_models()
        assert len(models) == 1 + rows_left
        assert_registry_consistent(reg)
        assert reg.get_model(survivor) == {"survivor": True}
        if rows_left:
            crashed = next(m for m in models if m.model_id != survivor)
            assert reg.get_model(crashed.model_id) == {"weights": [1.0, 2.0], "step": step}
            assert crashed.tags == {"crash": step} and crashed.performance_metrics == {"ic_mean": 0.05}
        orphans = orphan_entries(reg)
        assert bool(orphans) == orphan_left, orphans

        swept = reg.sweep_orphans(grace_period=timedelta(0))
        assert set(swept.removed) == orphans
        assert orphan_entries(reg) == set()
        assert_registry_consistent(reg)

        after = reg.register_model({"after": step}, ModelMetadata(model_name=NAME))
        assert reg.get_model(after) == {"after": step}
        versions = [m.version for m in reg.list_models(None) if m.model_name == NAME]
        assert len(set(versions)) == len(versions)
        production = reg.get_production_model(NAME)
        assert production is not None and production.model_id == survivor
