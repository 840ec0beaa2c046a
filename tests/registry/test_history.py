"""The append-only history: every change recorded with who, why and which flow run; production at time T."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from registry import ModelRegistry, ModelStatus
from tests.registry.registry_helpers import metadata

S = ModelStatus


def moment() -> datetime:
    """A time strictly between the calls before and after it."""
    time.sleep(0.01)
    now = datetime.now(UTC)
    time.sleep(0.01)
    return now


def test_registration_records_actor_reason_and_flow_run(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata(ic_mean=0.1), actor="alice", reason="weekly", flow_run_id="fr-1")
    (event,) = registry.history(model_id=model_id)
    assert (event.event, event.from_status, event.to_status) == ("registered", None, S.CANDIDATE)
    assert (event.actor, event.reason, event.flow_run_id) == ("alice", "weekly", "fr-1")
    assert event.model_name == "lgbm_alpha158" and event.created_at.tzinfo is not None


def test_default_actor_is_filled_in(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata())
    assert registry.history(model_id=model_id)[0].actor


def test_every_change_is_recorded_in_order(registry: ModelRegistry, model: Any) -> None:
    a = registry.register_model(model, metadata(), actor="ci")
    b = registry.register_model(model, metadata(), actor="ci")
    registry.set_model_status(a, "candidate", actor="alice", reason="review")
    registry.set_production_model(a, actor="alice", flow_run_id="fr-7")
    registry.set_production_model(b, actor="bob", reason="newer")
    registry.set_model_status(a, "archived", actor="janitor")
    registry.delete_model(a, actor="janitor")
    events = [(e.model_id, e.event, e.from_status, e.to_status, e.actor) for e in registry.history("lgbm_alpha158")]
    assert events == [
        (a, "registered", None, S.REGISTERED, "ci"),
        (b, "registered", None, S.REGISTERED, "ci"),
        (a, "status_changed", S.REGISTERED, S.CANDIDATE, "alice"),
        (a, "promoted", S.CANDIDATE, S.PRODUCTION, "alice"),
        (a, "demoted", S.PRODUCTION, S.CANDIDATE, "bob"),
        (b, "promoted", S.REGISTERED, S.PRODUCTION, "bob"),
        (a, "archived", S.CANDIDATE, S.ARCHIVED, "janitor"),
        (a, "deleted", S.ARCHIVED, None, "janitor"),
    ]
    promoted = registry.history(model_id=a)[2]
    assert promoted.flow_run_id == "fr-7"
    assert [e.event for e in registry.history(model_id=b)] == ["registered", "promoted"]


def test_history_filters_by_name_and_limits_to_the_newest(registry: ModelRegistry, model: Any) -> None:
    registry.register_model(model, metadata("a"))
    for _ in range(3):
        registry.register_model(model, metadata("b"))
    assert {e.model_name for e in registry.history(model_name="a")} == {"a"}
    assert len(registry.history()) == 4
    newest = registry.history(model_name="b", limit=2)
    assert [e.model_id for e in newest] == ["b_v1.1.0", "b_v1.2.0"]


def test_production_at_answers_across_several_promotions(registry: ModelRegistry, model: Any) -> None:
    name = "lgbm_alpha158"
    first = registry.register_model(model, metadata())
    second = registry.register_model(model, metadata())
    third = registry.register_model(model, metadata())
    t0 = moment()
    registry.set_production_model(first)
    t1 = moment()
    registry.set_production_model(second)
    t2 = moment()
    registry.set_production_model(third)
    t3 = moment()
    registry.set_production_model(first)  # a rollback to the first model
    t4 = moment()
    registry.set_model_status(first, "candidate", force=True)
    t5 = moment()
    assert [registry.production_at(name, t) for t in (t0, t1, t2, t3, t4, t5)] == [
        None, first, second, third, first, None,
    ]
    assert registry.production_at("other_name", t3) is None


def test_production_at_survives_deleting_an_old_production_model(registry: ModelRegistry, model: Any) -> None:
    first = registry.register_model(model, metadata())
    second = registry.register_model(model, metadata())
    registry.set_production_model(first)
    t1 = moment()
    registry.set_production_model(second)
    registry.delete_model(first)
    assert registry.production_at("lgbm_alpha158", t1) == first
    assert registry.production_at("lgbm_alpha158", datetime.now(UTC)) == second


def test_production_at_accepts_any_timezone(registry: ModelRegistry, model: Any) -> None:
    from datetime import timedelta, timezone

    model_id = registry.register_model(model, metadata())
    registry.set_production_model(model_id)
    shanghai = datetime.now(UTC).astimezone(timezone(timedelta(hours=8)))
    assert registry.production_at("lgbm_alpha158", shanghai) == model_id
    assert registry.production_at("lgbm_alpha158", shanghai - timedelta(hours=1)) is None
