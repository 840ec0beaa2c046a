"""Side-by-side comparison of two registered models: metrics with differences, hyperparameter and dataset diffs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from registry.models import ModelInfo
from registry.policy import metric_difference

MISSING = "<missing>"


class MetricRow(BaseModel):
    """One metric of both models; `difference` is second minus first when both have it (0.0 when they tie
    within numerical noise: :func:`registry.policy.metric_difference`)."""

    name: str
    first: float | None
    second: float | None
    difference: float | None


class FieldDiff(BaseModel):
    """A configuration key whose value differs (`<missing>` where one model lacks it)."""

    key: str
    first: Any
    second: Any


class ModelComparison(BaseModel):
    """What `qmp models compare A B` prints."""

    model_config = ConfigDict(protected_namespaces=())

    first: str
    second: str
    metrics: list[MetricRow]
    hyperparameters: list[FieldDiff]
    dataset: list[FieldDiff]
    window_warning: str | None = None  # set when the metrics were measured on different test windows


def test_window(info: ModelInfo) -> str:
    """The model's test segment and its day count as registered (``?`` where unknown)."""
    segments = ((info.dataset_info.model_extra or {}).get("segments") or {}) if info.dataset_info else {}
    span = segments.get("test") or []
    bounds = "..".join(str(bound)[:10] for bound in span) if len(span) == 2 else "?"
    days = info.performance_metrics.get("test_days")
    return f"{bounds}, {int(days)} days" if days is not None else bounds


def window_warning(first: ModelInfo, second: ModelInfo) -> str | None:
    """One line when the two models' metrics come from different test windows (their difference then mixes
    the models with the markets they were measured on)."""
    a, b = test_window(first), test_window(second)
    if a == b:
        return None
    return (f"warning: the metrics were measured on different test windows ({first.model_id}: {a}; "
            f"{second.model_id}: {b}): their differences compare different days")


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (`kwargs.num_leaves`)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def diff(first: dict[str, Any], second: dict[str, Any]) -> list[FieldDiff]:
    """The keys whose values differ between two (flattened) configurations, sorted."""
    a, b = flatten(first), flatten(second)
    return [
        FieldDiff(key=key, first=a.get(key, MISSING), second=b.get(key, MISSING))
        for key in sorted(set(a) | set(b))
        if a.get(key, MISSING) != b.get(key, MISSING)
    ]


def compare_models(first: ModelInfo, second: ModelInfo) -> ModelComparison:
    """Metrics side by side (every metric either model has) and what differs in their configurations."""
    names = sorted(set(first.performance_metrics) | set(second.performance_metrics))
    metrics = []
    for name in names:
        a, b = first.performance_metrics.get(name), second.performance_metrics.get(name)
        difference = None if a is None or b is None else metric_difference(b, a)
        metrics.append(MetricRow(name=name, first=a, second=b, difference=difference))
    datasets = [info.dataset_info.model_dump(mode="json", exclude_none=True) if info.dataset_info else {}
                for info in (first, second)]
    return ModelComparison(
        first=first.model_id, second=second.model_id, metrics=metrics,
        hyperparameters=diff(first.hyperparameters, second.hyperparameters), dataset=diff(*datasets),
        window_warning=window_warning(first, second),
    )
