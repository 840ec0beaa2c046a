"""Hostile input gets its specific error and writes nothing; hostile strings reach SQL only as bound values.

(The basic bad names, versions, metrics, unpicklable models and model paths are in tests/registry.)
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from registry import (
    CorruptedArtifactError,
    InvalidMetricError,
    InvalidModelError,
    InvalidNameError,
    InvalidStatusError,
    ModelFilter,
    ModelMetadata,
    ModelNotFoundError,
    ModelRegistry,
)
from tests.reliability.consistency import assert_registry_consistent

SQL_FRAGMENTS = [
    "ic_mean'; DROP TABLE model_versions; --",
    "ic_mean\" OR 1=1 --",
    "x) UNION SELECT model_id FROM model_versions --",
    "ic_mean/**/OR/**/1=1",
]
LONG = "a" * 10_000


def assert_nothing_written(reg: ModelRegistry) -> None:
    assert reg.list_models() == [] and reg.history() == []
    assert [p for p in reg.artifacts.entries()] == []


def good_metadata(**fields: Any) -> ModelMetadata:
    return ModelMetadata(model_name="hostile", performance_metrics={"ic_mean": 0.05}, **fields)


@pytest.mark.parametrize("fragment", SQL_FRAGMENTS)
def test_sql_fragment_as_filter_metric_name_or_tag_key_is_an_invalid_name(fragment: str) -> None:
    with pytest.raises(InvalidNameError):
        ModelFilter(min_performance={fragment: 0.0})
    with pytest.raises(InvalidNameError):
        ModelFilter(tags={fragment: "x"})


@pytest.mark.parametrize("fragment", SQL_FRAGMENTS)
def test_sql_fragment_as_metric_name_or_tag_key_at_registration_writes_nothing(
    registry: ModelRegistry, fragment: str
) -> None:
    for fields in ({"performance_metrics": {fragment: 0.1}}, {"tags": {fragment: "x"}}):
        with pytest.raises(InvalidNameError):
            ModelMetadata(model_name="hostile", **fields)
        smuggled = good_metadata()
        setattr(smuggled, *next(iter(fields.items())))  # assignment skips validation: the registry re-validates
        with pytest.raises(InvalidNameError):
            registry.register_model({"w": 1}, smuggled)
    assert_nothing_written(registry)


@pytest.mark.parametrize("fragment", SQL_FRAGMENTS)
def test_sql_fragments_in_filter_values_and_lookups_match_nothing_and_change_nothing(
    registry: ModelRegistry, fragment: str
) -> None:
    model_id = registry.register_model({"w": 1}, good_metadata(tags={"team": "alpha"}, experiment_name="exp"))
    filters = [
        ModelFilter(model_name=fragment), ModelFilter(model_type=fragment), ModelFilter(experiment_name=fragment),
        ModelFilter(tags={"team": fragment}),
    ]
    for flt in filters:
        assert registry.list_models(flt) == []
    for lookup in (registry.get_model_info, registry.get_model, registry.delete_model, registry.verify_artifact):
        with pytest.raises(ModelNotFoundError):
            lookup(fragment)
    assert registry.history(model_name=fragment) == [] and registry.history(model_id=fragment) == []
    assert [m.model_id for m in registry.list_models()] == [model_id]
    assert_registry_consistent(registry)


@pytest.mark.parametrize("hostile_id", ["../../etc/passwd", "/etc/passwd", "hostile_v1.0.0/../x", "nul\x00id", LONG])
def test_hostile_model_ids_are_not_found_and_touch_no_file(registry: ModelRegistry, hostile_id: str) -> None:
    registry.register_model({"w": 1}, good_metadata())
    for lookup in (registry.get_model_info, registry.get_model, registry.delete_model, registry.verify_artifact):
        with pytest.raises(ModelNotFoundError):
            lookup(hostile_id)
    with pytest.raises(ModelNotFoundError):
        registry.set_production_model(hostile_id)
    with pytest.raises(ModelNotFoundError):
        registry.set_model_status(hostile_id, "archived")
    assert len(registry.list_models()) == 1


def test_ten_thousand_characters_in_filters_and_history_find_nothing(registry: ModelRegistry) -> None:
    registry.register_model({"w": 1}, good_metadata(tags={"team": "alpha"}))
    for flt in (ModelFilter(model_name=LONG), ModelFilter(experiment_name=LONG), ModelFilter(tags={"team": LONG})):
        assert registry.list_models(flt) == []
    assert registry.history(model_name=LONG) == [] and registry.history(model_id=LONG) == []
    with pytest.raises(InvalidNameError):
        registry.get_production_model(LONG)


def test_nul_in_a_filter_is_an_invalid_name_and_in_a_history_query_finds_nothing(registry: ModelRegistry) -> None:
    registry.register_model({"w": 1}, good_metadata(tags={"team": "alpha"}))
    for fields in ({"model_name": "a\x00"}, {"experiment_name": "a\x00"}, {"tags": {"team": "a\x00"}},
                   {"model_type": "a\x00"}):
        with pytest.raises(InvalidNameError, match="NUL"):
            ModelFilter(**fields)
    assert registry.history(model_name="a\x00") == [] and registry.history(model_id="a\x00") == []
    with pytest.raises(InvalidNameError):
        registry.get_production_model("a\x00")


@pytest.mark.parametrize("field", ["model_name", "version", "metric", "tag_key", "tag_value", "description",
                                   "experiment_name", "model_type"])
@pytest.mark.parametrize("text", [LONG, "bad\x00nul"], ids=["10k_chars", "nul"])
def test_ten_thousand_characters_or_nul_in_any_field_is_an_invalid_name(field: str, text: str) -> None:
    fields: dict[str, Any] = {"model_name": "hostile"}
    if field == "metric":
        fields["performance_metrics"] = {text: 0.1}
    elif field == "tag_key":
        fields["tags"] = {text: "x"}
    elif field == "tag_value":
        fields["tags"] = {"k": text}
    else:
        fields[field] = text
    with pytest.raises(InvalidNameError):
        ModelMetadata(**fields)


def test_hostile_primary_metric_or_status_is_refused(tmp_path: Path, registry: ModelRegistry) -> None:
    with pytest.raises(InvalidNameError):
        ModelRegistry(tmp_path / "other", primary_metric=SQL_FRAGMENTS[0])
    model_id = registry.register_model({"w": 1}, good_metadata())
    for status in ("production'; --", "PRODUCTION ", "", "archived\x00"):
        with pytest.raises(InvalidStatusError):
            registry.set_model_status(model_id, status)
    assert registry.get_model_info(model_id).status == "candidate"


def test_metric_overflowing_to_infinity_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidMetricError):
        ModelMetadata(model_name="hostile", performance_metrics={"ic_mean": 10**400})
    with pytest.raises(InvalidMetricError):
        ModelMetadata(model_name="hostile", performance_metrics={"ic_mean": "nan"})
    assert_nothing_written(registry)


class _FailsHalfwayThroughPickling:
    """Pickles a large prefix, then fails: the staged file is partly written when the error comes."""

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("cannot pickle a live connection")


@pytest.mark.parametrize("model", [
    [b"x" * 2_000_000, _FailsHalfwayThroughPickling()],
    {"generator": (i for i in range(3))},
    {"file": open(os.devnull, "rb")},  # noqa: SIM115 - the open handle is the point
], ids=["fails_halfway", "generator", "open_file"])
def test_model_that_fails_partway_through_pickling_leaves_no_staged_file(registry: ModelRegistry, model: Any) -> None:
    with pytest.raises(InvalidModelError, match="cannot be pickled"):
        registry.register_model(model, good_metadata())
    assert_nothing_written(registry)


def test_deeply_nested_model_is_an_invalid_model_not_a_crash(registry: ModelRegistry) -> None:
    nested: list[Any] = []
    for _ in range(200_000):
        nested = [nested]
    with pytest.raises(InvalidModelError):
        registry.register_model(nested, good_metadata())
    assert_nothing_written(registry)


@pytest.mark.parametrize("path", ["with\x00nul.pkl", LONG + ".pkl"], ids=["nul", "10k_chars"])
def test_unusable_model_path_is_an_invalid_model_with_nothing_written(
    registry: ModelRegistry, tmp_path: Path, path: str
) -> None:
    with pytest.raises(InvalidModelError):
        registry.register_model(None, good_metadata(), model_path=str(tmp_path / path))
    assert_nothing_written(registry)


def test_fifo_model_path_is_refused_without_blocking(registry: ModelRegistry, tmp_path: Path) -> None:
    fifo = tmp_path / "model.pkl"
    os.mkfifo(fifo)
    with pytest.raises(InvalidModelError, match="not a readable file"):
        registry.register_model(None, good_metadata(), model_path=fifo)
    assert_nothing_written(registry)


class _Detonates:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("how", ["swap_in_another_models_file", "symlink_to_outside", "append_payload"])
def test_tampered_model_file_is_never_unpickled(registry: ModelRegistry, tmp_path: Path, how: str) -> None:
    marker = tmp_path / "unpickled.marker"
    victim = registry.register_model({"w": 1}, good_metadata())
    other = registry.register_model({"w": 2}, good_metadata())
    target = registry.registry_dir / victim / "model.pkl"
    if how == "swap_in_another_models_file":
        target.write_bytes((registry.registry_dir / other / "model.pkl").read_bytes())
    elif how == "symlink_to_outside":
        evil = tmp_path / "evil.pkl"
        evil.write_bytes(pickle.dumps(_Detonates(marker)))
        target.unlink()
        target.symlink_to(evil)
    else:
        with open(target, "ab") as sink:
            sink.write(pickle.dumps(_Detonates(marker)))
    for load in (registry.get_model, registry.verify_artifact, registry.set_production_model):
        with pytest.raises(CorruptedArtifactError, match=victim):
            load(victim)
    assert not marker.exists()
    assert registry.get_model(other) == {"w": 2}
