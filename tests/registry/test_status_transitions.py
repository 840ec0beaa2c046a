"""Status changes through the registry follow the transition table and are recorded."""

from __future__ import annotations

from typing import Any

import pytest

from registry import InvalidStatusError, InvalidTransitionError, ModelRegistry, ModelStatus
from tests.registry.registry_helpers import metadata


def status(registry: ModelRegistry, model_id: str) -> ModelStatus:
    return registry.get_model_info(model_id).status


def test_registered_model_can_become_candidate_and_back(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_model_status(model_id, "candidate", actor="alice", reason="looks good")
    assert status(registry, model_id) == ModelStatus.CANDIDATE
    registry.set_model_status(model_id, ModelStatus.REGISTERED)
    assert status(registry, model_id) == ModelStatus.REGISTERED


def test_archived_model_is_restored_to_registered_only(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_model_status(model_id, "archived")
    info = registry.get_model_info(model_id)
    assert info.status == ModelStatus.ARCHIVED and info.archived_at is not None
    with pytest.raises(InvalidTransitionError, match="'archived' to 'candidate'"):
        registry.set_model_status(model_id, "candidate")
    with pytest.raises(InvalidTransitionError):
        registry.set_production_model(model_id)
    registry.set_model_status(model_id, "registered")
    info = registry.get_model_info(model_id)
    assert info.status == ModelStatus.REGISTERED and info.archived_at is None
    assert [e.event for e in registry.history(model_id=model_id)] == ["registered", "archived", "restored"]


def test_unknown_status_raises_invalid_status_error_and_changes_nothing(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    with pytest.raises(InvalidStatusError, match="unknown status 'retired'"):
        registry.set_model_status(model_id, "retired")
    assert status(registry, model_id) == ModelStatus.REGISTERED
    assert len(registry.history(model_id=model_id)) == 1


def test_production_cannot_be_left_through_set_model_status_without_force(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_production_model(model_id)
    for target in ("candidate", "registered", "archived"):
        with pytest.raises(InvalidTransitionError, match="in production"):
            registry.set_model_status(model_id, target)
    assert status(registry, model_id) == ModelStatus.PRODUCTION


def test_forced_retire_takes_a_model_out_of_production(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_production_model(model_id)
    registry.set_model_status(model_id, "archived", force=True, actor="ops", reason="bad data")
    assert status(registry, model_id) == ModelStatus.ARCHIVED
    assert registry.get_production_model("lgbm_alpha158") is None
    last = registry.history(model_id=model_id)[-1]
    assert (last.event, last.from_status, last.to_status, last.actor, last.reason) == (
        "retired", ModelStatus.PRODUCTION, ModelStatus.ARCHIVED, "ops", "bad data")


def test_setting_status_production_promotes_like_set_production_model(registry: ModelRegistry, model: Any) -> None:
    old = registry.register_model(model, metadata())
    new = registry.register_model(model, metadata())
    registry.set_model_status(old, "production")
    registry.set_model_status(new, "production")
    assert status(registry, new) == ModelStatus.PRODUCTION
    assert status(registry, old) == ModelStatus.CANDIDATE


def test_setting_the_current_status_again_is_a_no_op(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_model_status(model_id, "registered")
    assert len(registry.history(model_id=model_id)) == 1


def test_status_change_updates_updated_at(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    before = registry.get_model_info(model_id)
    registry.set_model_status(model_id, "archived")
    after = registry.get_model_info(model_id)
    assert after.updated_at > before.updated_at and after.created_at == before.created_at


def test_illegal_transition_leaves_no_history_event(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    registry.set_model_status(model_id, "archived")
    with pytest.raises(InvalidTransitionError):
        registry.set_model_status(model_id, "candidate")
    assert [e.event for e in registry.history(model_id=model_id)] == ["registered", "archived"]
