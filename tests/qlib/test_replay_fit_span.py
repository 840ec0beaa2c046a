"""A replay's windows record the span their processors were fitted on: the YAML's fit span in `fixed` mode
(one handler for every window), the window's own truncated train span in `refit` mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.settings import load_settings
from tasks.core.qlib.workflow_config import load_workflow_config
from tasks.core.replay.plan import ReplaySpec, plan_replay
from tests.replay_data import HORIZON, STEP, replay_config, synth_replay_data

pytestmark = [pytest.mark.qlib]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    return replay_config(synth_replay_data(tmp_path_factory.mktemp("fit-span") / "qlib"))


def _plan(config: dict, processors: str, tmp_path: Path):  # type: ignore[no-untyped-def,type-arg]
    settings = load_settings(registry_dir=tmp_path / "registry")
    spec = ReplaySpec(step=STEP, horizon=HORIZON, processors=processors)  # type: ignore[arg-type]
    return plan_replay(load_workflow_config(config), "linear", spec, settings)


def test_a_fixed_replay_records_the_yamls_fit_span_on_every_window(config: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    handler = config["task"]["dataset"]["kwargs"]["handler"]["kwargs"]
    plan = _plan(config, "fixed", tmp_path)
    assert len(plan.windows) > 1
    assert {(w.fit_start_time, w.fit_end_time) for w in plan.windows} == {
        (str(handler["fit_start_time"]), str(handler["fit_end_time"]))}


def test_a_refit_replay_records_each_windows_train_span(config: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    plan = _plan(config, "refit", tmp_path)
    assert [(w.fit_start_time, w.fit_end_time) for w in plan.windows] == [
        tuple(w.segments["train"]) for w in plan.windows]
    assert len({w.fit_end_time for w in plan.windows}) == len(plan.windows)
