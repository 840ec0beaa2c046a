"""The Qlib steps run with the process's long-lived objects out of the cyclic garbage collector's passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.settings import Settings
from tasks.core.qlib.evaluation import evaluate
from tasks.core.qlib.session import long_lived_objects_frozen
from tasks.core.qlib.training import prepare_dataset, train_model
from tasks.core.qlib.workflow_config import load_workflow_config

from .conftest import LINEAR_YAML


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def nothing_frozen() -> Iterator[None]:
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("nothing_frozen")
def test_objects_frozen_for_a_step_go_back_to_the_collector_afterwards() -> None:
    gc.collect()
    node = _Node()
    alive = weakref.ref(node)
    del node  # garbage now, but only a collection can tell
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert alive() is not None  # frozen: the collector skips it
        frozen = gc.get_freeze_count()
        newer = [[] for _ in range(1000)]  # tracked objects made after the freeze
        with long_lived_objects_frozen():  # a nested step neither freezes them nor unfreezes at its end
            assert gc.get_freeze_count() <= frozen  # frozen objects freed meanwhile leave the count
        assert 0 < gc.get_freeze_count() <= frozen
        del newer
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None  # not kept for good


@pytest.mark.usefixtures("nothing_frozen")
def test_a_freeze_made_by_the_process_itself_is_left_alone() -> None:
    gc.freeze()  # as a pre-fork server does
    frozen = gc.get_freeze_count()
    newer = [[] for _ in range(1000)]  # tracked objects made after the process's freeze
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() <= frozen  # not frozen by the step (freed ones leave the count)
    assert gc.get_freeze_count() > frozen // 2  # and the process's freeze is still in place
    del newer


@pytest.mark.qlib
@pytest.mark.slow
@pytest.mark.usefixtures("nothing_frozen")
def test_every_collection_during_the_qlib_steps_skips_the_frozen_objects(
    qlib_data: Path, qlib_settings: Settings
) -> None:
    seen: list[int] = []

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(gc.get_freeze_count())

    def collections_during(step: Callable[[], Any]) -> tuple[Any, list[int]]:
        seen.clear()
        result = step()
        assert gc.get_freeze_count() == 0  # unfrozen when the step ends
        return result, list(seen)

    cfg = load_workflow_config(LINEAR_YAML, provider_uri=qlib_data)
    gc.callbacks.append(on_collection)
    try:
        dataset, built = collections_during(lambda: prepare_dataset(cfg, settings=qlib_settings))
        trained, fitted = collections_during(lambda: train_model(cfg, dataset, "qmp-gc", settings=qlib_settings))
        metrics, evaluated = collections_during(
            lambda: evaluate(trained.model, dataset, cfg, trained.recorder_id, settings=qlib_settings).metrics
        )
    finally:
        gc.callbacks.remove(on_collection)
    assert metrics["ic_mean"] == metrics["ic_mean"]  # a real evaluation ran (not NaN)
    for step, counts in (("prepare", built), ("train", fitted), ("evaluate", evaluated)):
        assert counts, f"{step}: no collection ran, nothing was measured"
        assert min(counts) > 0, f"{step}: a collection went over the long-lived objects"
