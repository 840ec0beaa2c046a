"""A name's live page and its JSON twin: the live IC chart with its expectation, the signal return, the verdict."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient

from registry import ModelMetadata, ModelRegistry, ScoredDay
from registry.live import LiveScore

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(25)]


def test_the_live_page_draws_live_ic_against_expectation_and_the_drift_verdict(
    client: TestClient, registry: ModelRegistry
) -> None:
    model_id = registry.register_model({"w": 1}, ModelMetadata(model_name="watched",
                                                               performance_metrics={"ic_mean": 0.05, "ic_std": 0.1}))
    registry.set_production_model(model_id)
    registry.write_predictions("watched", [ScoredDay(model_id, d, [("A", 1.0)]) for d in DAYS], data_version="v1")
    registry.write_live_metrics("watched", [LiveScore(model_id=model_id, trading_date=d, ic=-0.03, rank_ic=-0.02,
                                                      instruments=40, signal_return=0.002, top_k=50)
                                            for d in DAYS[:23]], data_version="v1")

    api = client.get("/api/models/watched/live", params={"days": 20}).json()
    assert api["drift"]["verdict"] == "drifted" and api["live_days_total"] == 23 and len(api["recent"]) == 20
    html = client.get("/models/watched/live").text
    assert 'data-verdict="drifted"' in html and 'data-chart="live-ic"' in html
    assert 'data-line="expectation"' in html and 'data-line="drift threshold"' in html
    assert 'data-chart="live-signal-return"' in html
    assert client.get("/api/models/nobody/live").status_code == 404
    assert client.get("/models/watched/live", params={"days": 0}).status_code in (400, 422)
