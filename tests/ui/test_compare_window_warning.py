"""The compare page and its JSON twin warn in one line when the two models' test windows differ."""

from __future__ import annotations

from fastapi.testclient import TestClient

from registry import ModelMetadata, ModelRegistry


def _register(registry: ModelRegistry, test: list[str], days: float) -> str:
    return registry.register_model({"w": days}, ModelMetadata(
        model_name="windows", performance_metrics={"ic_mean": 0.05, "test_days": days},
        dataset_info={"segments": {"test": test}}))


def test_the_compare_page_warns_when_the_test_windows_differ(client: TestClient, registry: ModelRegistry) -> None:
    a = _register(registry, ["2017-01-02", "2018-09-28"], 159)
    b = _register(registry, ["2019-01-02", "2019-06-28"], 120)
    same = _register(registry, ["2017-01-02", "2018-09-28"], 159)
    warning = client.get("/api/compare", params={"a": a, "b": b}).json()["comparison"]["window_warning"]
    assert "different test windows" in warning and "159 days" in warning and "120 days" in warning
    assert 'data-warning="test-window"' in client.get("/compare", params={"a": a, "b": b}).text
    assert client.get("/api/compare", params={"a": a, "b": same}).json()["comparison"]["window_warning"] is None
    assert 'data-warning="test-window"' not in client.get("/compare", params={"a": a, "b": same}).text
