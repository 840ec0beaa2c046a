"""Versions through the registry: kept when given, allocated when not, duplicates refused, semantic order."""

from __future__ import annotations

from typing import Any

import pytest

from registry import DuplicateVersionError, ModelFilter, ModelRegistry
from tests.registry.registry_helpers import leftover_dirs, metadata


def test_given_version_is_kept_in_the_model_id(registry: ModelRegistry, model: Any) -> None:
    assert registry.register_model(model, metadata("m", version="3.2.1")) == "m_v3.2.1"
    assert registry.register_model(model, metadata("m", version="4.0-rc1")) == "m_v4.0-rc1"


def test_missing_versions_are_allocated_1_0_0_then_minor_bumps(registry: ModelRegistry, model: Any) -> None:
    ids = [registry.register_model(model, metadata("m")) for _ in range(3)]
    assert ids == ["m_v1.0.0", "m_v1.1.0", "m_v1.2.0"]


def test_allocation_continues_after_the_highest_semantic_version(registry: ModelRegistry, model: Any) -> None:
    registry.register_model(model, metadata("m", version="1.9.0"))
    registry.register_model(model, metadata("m", version="1.10.0"))
    registry.register_model(model, metadata("m", version="1.2.0"))
    assert registry.register_model(model, metadata("m")) == "m_v1.11.0"


def test_versions_are_allocated_per_name(registry: ModelRegistry, model: Any) -> None:
    registry.register_model(model, metadata("a", version="5.0.0"))
    assert registry.register_model(model, metadata("b")) == "b_v1.0.0"


def test_duplicate_version_is_refused_and_writes_nothing(registry: ModelRegistry, model: Any) -> None:
    registry.register_model(model, metadata("m", version="1.0.0"))
    with pytest.raises(DuplicateVersionError, match=r"1\.0\.0"):
        registry.register_model({"other": True}, metadata("m", version="1.0.0"))
    assert len(registry.list_models()) == 1
    assert registry.get_model("m_v1.0.0") == model
    assert leftover_dirs(registry) == [registry.registry_dir / "m_v1.0.0"]


@pytest.mark.parametrize(("first", "second"), [("1.0", "1.0.0"), ("1.0.0", "1.0"), ("1", "1.0"), ("2.0.0-rc1", "2.0-rc1")])
def test_short_and_long_spellings_of_one_version_are_duplicates(
    registry: ModelRegistry, model: Any, first: str, second: str
) -> None:
    registry.register_model(model, metadata("m", version=first))
    with pytest.raises(DuplicateVersionError):
        registry.register_model(model, metadata("m", version=second))
    assert len(registry.list_models()) == 1


def test_prerelease_and_release_of_the_same_numbers_are_distinct(registry: ModelRegistry, model: Any) -> None:
    registry.register_model(model, metadata("m", version="2.0.0-rc1"))
    registry.register_model(model, metadata("m", version="2.0.0"))
    assert len(registry.list_models()) == 2


def test_deleted_version_can_be_registered_again(registry: ModelRegistry, model: Any) -> None:
    model_id = registry.register_model(model, metadata("m", version="1.0.0"))
    registry.delete_model(model_id)
    assert registry.register_model({"new": 1}, metadata("m", version="1.0.0")) == model_id
    assert registry.get_model(model_id) == {"new": 1}


def test_order_by_version_is_semantic_not_lexical(registry: ModelRegistry, model: Any) -> None:
    for version in ["1.10.0", "1.9.0", "1.2.0", "2.0.0", "2.0.0-rc1", "1.9.1"]:
        registry.register_model(model, metadata("m", version=version))
    ascending = registry.list_models(ModelFilter(order_by="version", descending=False))
    assert [m.version for m in ascending] == ["1.2.0", "1.9.0", "1.9.1", "1.10.0", "2.0.0-rc1", "2.0.0"]
    descending = registry.list_models(ModelFilter(order_by="version"))
    assert [m.version for m in descending] == ["2.0.0", "2.0.0-rc1", "1.10.0", "1.9.1", "1.9.0", "1.2.0"]


def test_an_automatic_version_is_never_allocated_twice_even_after_its_model_was_deleted(
    registry: ModelRegistry, model: Any
) -> None:
    first = registry.register_model(model, metadata("m"))
    second = registry.register_model(model, metadata("m"))
    registry.delete_model(second)
    third = registry.register_model(model, metadata("m"))
    assert (first, second, third) == ("m_v1.0.0", "m_v1.1.0", "m_v1.2.0")
    registry.delete_model(first)
    registry.delete_model(third)
    assert registry.register_model(model, metadata("m")) == "m_v1.3.0"
    assert [e.event for e in registry.history(model_id="m_v1.1.0")] == ["registered", "deleted"]
