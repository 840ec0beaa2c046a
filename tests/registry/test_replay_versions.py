"""Replay versions (registry.replays) on SQLite and PostgreSQL: never candidates, invisible to the live name."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from registry import InvalidNameError, ModelFilter, ModelRegistry, ModelStatus
from registry.replays import is_replay_name, replay_model_name, split_replay_name
from tests.registry.registry_helpers import metadata

NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
STALE = date(2024, 6, 30)


def test_replay_names_are_derived_from_the_model_name_and_the_replay_id() -> None:
    name = replay_model_name("lgbm_alpha158", "0123456789ab")
    assert name == "lgbm_alpha158.replay-0123456789ab"
    assert is_replay_name(name) and not is_replay_name("lgbm_alpha158")
    assert split_replay_name(name) == ("lgbm_alpha158", "0123456789ab")
    with pytest.raises(InvalidNameError, match="replay id"):
        replay_model_name("lgbm_alpha158", "../etc")
    with pytest.raises(InvalidNameError, match="already a replay name"):
        replay_model_name(name, "0123456789ab")


def test_a_replay_window_better_than_production_is_registered_never_candidate(registry: ModelRegistry, model):
    live = registry.register_model(model, metadata("alpha", ic_mean=0.01))
    registry.set_production_model(live)
    replay = replay_model_name("alpha", "abcdef123456")

    first = registry.register_model(model, metadata(replay, version="1.0.0", ic_mean=0.5, tags={"replay_id": "abcdef123456"}))

    assert registry.get_model_info(first).status == ModelStatus.REGISTERED
    # The live name's production and newest version are untouched by the replay.
    assert registry.get_production_model("alpha").model_id == live  # type: ignore[union-attr]
    assert registry.register_model(model, metadata("alpha", ic_mean=0.02)) == "alpha_v1.1.0"
    found = registry.list_models(ModelFilter(tags={"replay_id": "abcdef123456"}))
    assert [m.model_id for m in found] == [first]


def test_cleanup_keep_last_and_age_leave_replay_windows_alone(registry: ModelRegistry, model):
    replay = replay_model_name("alpha", "abcdef123456")
    windows = [registry.register_model(model, metadata(replay, version=f"{i}.0.0", training_date=STALE))
               for i in range(1, 6)]
    old_live = registry.register_model(model, metadata("alpha", training_date=STALE))
    new_live = registry.register_model(model, metadata("alpha", training_date=STALE))

    result = registry.archive_stale(max_age_days=30, keep_last=1, now=NOW)

    assert result.archived_ids == [old_live]
    assert registry.get_model_info(new_live).status != ModelStatus.ARCHIVED
    assert {registry.get_model_info(w).status for w in windows} == {ModelStatus.REGISTERED}
