"""Bad names, versions, metrics and models are refused before anything is written (no row, no file)."""

from __future__ import annotations

import enum
import math
import re
import threading
from datetime import date
from pathlib import Path
from typing import Any

import numpy
import pytest

from registry import (
    DatasetConfig,
    InvalidMetadataError,
    InvalidMetricError,
    InvalidModelError,
    InvalidNameError,
    InvalidStatusError,
    ModelFilter,
    ModelMetadata,
    ModelRegistry,
)
from registry.errors import InvalidArgumentError
from tests.registry.registry_helpers import leftover_dirs, metadata

BAD_NAMES = [
    "", "../evil", "..", "a/b", "a\\b", "/abs", "a..b", ".hidden", "-dash", "name with space", "x" * 101,
    "trailing\n", "nul\x00", "tab\tname", "ünïcode", "semi;colon",
]
BAD_VERSIONS = ["../1", "1/0", "1.0\\0", "v1", "1.0.0.0", "1.0-a..b", "1.0\n", "", "1.0-" + "r" * 40]


def assert_nothing_written(reg: ModelRegistry) -> None:
    assert reg.list_models() == []
    assert reg.history() == []
    assert leftover_dirs(reg) == []
    assert not any(p.name not in {".staging"} for p in reg.registry_dir.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_model_name_is_refused_when_building_metadata(name: str) -> None:
    with pytest.raises(InvalidNameError):
        ModelMetadata(model_name=name)


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_bad_version_is_refused_when_building_metadata(version: str) -> None:
    with pytest.raises(InvalidNameError):
        ModelMetadata(model_name="ok", version=version)


@pytest.mark.parametrize("name", ["../evil", "a/b", "trailing\n", "x" * 101])
def test_bad_name_slipped_past_validation_is_refused_at_registration_with_nothing_written(
    registry: ModelRegistry, model: Any, name: str
) -> None:
    meta = metadata("fine")
    meta.model_name = name  # Pydantic does not validate assignment: the registry re-validates
    with pytest.raises(InvalidNameError):
        registry.register_model(model, meta)
    assert_nothing_written(registry)


@pytest.mark.parametrize("version", ["../../etc", "1.0/x", "1.0\n", "1.0-a..b"])
def test_bad_version_slipped_past_validation_is_refused_at_registration_with_nothing_written(
    registry: ModelRegistry, model: Any, version: str
) -> None:
    meta = ModelMetadata.model_construct(**{**metadata("fine").model_dump(), "version": version})
    with pytest.raises(InvalidNameError):
        registry.register_model(model, meta)
    assert_nothing_written(registry)


def test_longest_allowed_name_and_version_register(registry: ModelRegistry, model: Any) -> None:
    name = "n" * 100
    model_id = registry.register_model(model, metadata(name, version="999999999.999999999.999999999-" + "r" * 32))
    assert registry.get_model(model_id) == model


NOT_JSON = [
    ({"lr": math.nan}, "hyperparameters['lr']"),
    ({"grid": {"alpha": [0.1, math.inf]}}, "hyperparameters['grid']['alpha'][1]"),
    ({"callback": object()}, "hyperparameters['callback']"),
]


@pytest.mark.parametrize(("hyperparameters", "where"), NOT_JSON)
def test_hyperparameters_json_cannot_hold_are_refused_naming_the_key(hyperparameters: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidMetadataError, match=re.escape(where)):
        ModelMetadata(model_name="ok", hyperparameters=hyperparameters)


@pytest.mark.parametrize(("hyperparameters", "where"), NOT_JSON)
def test_hyperparameters_json_cannot_hold_slipped_past_validation_write_nothing(
    registry: ModelRegistry, model: Any, hyperparameters: dict[str, Any], where: str
) -> None:
    meta = metadata("fine")
    meta.hyperparameters = hyperparameters  # assigned after validation: the registry re-validates
    with pytest.raises(InvalidMetadataError, match=re.escape(where)):
        registry.register_model(model, meta)
    assert_nothing_written(registry)


def test_dataset_extra_json_cannot_hold_is_refused_naming_the_key() -> None:
    with pytest.raises(InvalidMetadataError, match=re.escape("dataset_info['weight']")):
        ModelMetadata(model_name="ok", dataset_info={"instruments": "csi300", "weight": math.inf})


class Loss(enum.Enum):
    MSE = "mse"


def test_hyperparameters_are_stored_as_the_json_they_read_back_as_on_every_backend(
    registry: ModelRegistry, model: Any
) -> None:
    hyperparameters = {"start": date(2020, 1, 2), "loss": Loss.MSE, "sizes": (8, 16), "leaves": numpy.int64(64),
                       "rate": numpy.float32(0.5), "early_stop": numpy.bool_(True), "nested": {"seed": numpy.int32(7)}}
    model_id = registry.register_model(model, metadata("plain", hyperparameters=hyperparameters,
                                                       dataset_info={"instruments": "csi300", "cut": date(2021, 3, 4)}))
    info = registry.get_model_info(model_id)
    assert info.hyperparameters == {"start": "2020-01-02", "loss": "mse", "sizes": [8, 16], "leaves": 64, "rate": 0.5,
                                    "early_stop": True, "nested": {"seed": 7}}
    assert info.dataset_info is not None and info.dataset_info.model_extra == {"cut": "2021-03-04"}
    assert registry.get_model_metadata(model_id)["hyperparameters"] == info.hyperparameters


def test_the_callers_dataset_config_is_left_as_given() -> None:
    given = DatasetConfig(instruments="csi300", cut=date(2021, 3, 4))
    meta = ModelMetadata(model_name="ok", dataset_info=given)
    assert meta.dataset_info is not None and meta.dataset_info.model_extra == {"cut": "2021-03-04"}
    assert given.model_extra == {"cut": date(2021, 3, 4)}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_metric_is_refused(value: float) -> None:
    with pytest.raises(InvalidMetricError, match="finite"):
        metadata(performance_metrics={"ic_mean": value})


def test_non_finite_metric_slipped_past_validation_writes_nothing(registry: ModelRegistry, model: Any) -> None:
    meta = metadata(ic_mean=0.05)
    meta.performance_metrics["ic_mean"] = math.nan
    with pytest.raises(InvalidMetricError):
        registry.register_model(model, meta)
    assert_nothing_written(registry)


@pytest.mark.parametrize("value", ["high", None, [0.1]])
def test_non_numeric_metric_is_refused(value: object) -> None:
    with pytest.raises(InvalidMetricError):
        metadata(performance_metrics={"ic_mean": value})


@pytest.mark.parametrize("name", ["", "1starts_with_digit", "a/b", "x" * 65])
def test_bad_metric_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        metadata(performance_metrics={name: 0.1})


@pytest.mark.parametrize(("key", "value"), [("", "v"), ("a/b", "v"), ("k", "x" * 257), ("k", "nul\x00")])
def test_bad_tag_is_refused(key: str, value: str) -> None:
    with pytest.raises(InvalidNameError):
        metadata(tags={key: value})


@pytest.mark.parametrize("unpicklable", [lambda: 1, threading.Lock()], ids=["lambda", "lock"])
def test_unpicklable_model_raises_invalid_model_error_with_nothing_written(
    registry: ModelRegistry, unpicklable: object
) -> None:
    with pytest.raises(InvalidModelError, match="cannot be pickled"):
        registry.register_model(unpicklable, metadata(version="1.0.0"))
    assert_nothing_written(registry)


def test_no_model_and_no_path_raises_invalid_model_error(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidModelError):
        registry.register_model(None, metadata())
    assert_nothing_written(registry)


def test_unknown_status_in_filter_raises_invalid_status_error() -> None:
    with pytest.raises(InvalidStatusError):
        ModelFilter(status="live")


def test_registry_errors_are_not_value_errors_so_pydantic_cannot_swallow_them() -> None:
    with pytest.raises(InvalidNameError) as caught:
        ModelMetadata(model_name="a/b")
    assert not isinstance(caught.value, ValueError)


def test_naive_datetime_is_refused_by_production_at(registry: ModelRegistry) -> None:
    from datetime import datetime

    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        registry.production_at("lgbm_alpha158", datetime(2024, 1, 1))


def test_model_path_that_is_a_directory_raises_invalid_model_error(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = tmp_path / "not_a_file"
    folder.mkdir()
    with pytest.raises(InvalidModelError):
        registry.register_model(None, metadata(), model_path=folder)
    assert_nothing_written(registry)
