"""Hostile and careless values in the registry: every page still renders them as text, safely."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from registry import ModelMetadata, ModelRegistry
from tests.ui.conftest import PREFECT_UI, metrics, request_approval


def test_the_resume_link_quotes_the_flow_run_id(client: TestClient, registry: ModelRegistry) -> None:
    model_id = registry.register_model({"x": 1}, ModelMetadata(model_name="evil", performance_metrics=metrics(0.5)))
    request_approval(registry, registry.get_model_info(model_id), None, ["r"], flow_run_id="../../evil?x=1#y")
    urls = {a["request"]["model_id"]: a["resume_url"] for a in client.get("/api/approvals").json()["approvals"]}
    assert urls[model_id] == f"{PREFECT_UI}/runs/flow-run/..%2F..%2Fevil%3Fx%3D1%23y"
    assert 'href="http://prefect.example:4200/runs/flow-run/..%2F..%2Fevil%3Fx%3D1%23y"' in client.get("/approvals").text


def test_newest_data_is_the_recorded_data_version_never_the_configured_end(client: TestClient,
                                                                           registry: ModelRegistry) -> None:
    configured = {"instruments": "csi300", "start_time": "2008-01-01", "end_time": "2030-12-31"}
    registry.register_model({"x": 1}, ModelMetadata(model_name="dated", dataset_info=configured,
                                                    tags={"data_version": "2022-12-30/0a1b2c"}))
    registry.register_model({"x": 1}, ModelMetadata(model_name="undated", dataset_info=configured))
    rows = {r["summary"]["model_name"]: r for r in client.get("/api/overview").json()["names"]}
    assert rows["dated"]["summary"]["newest_data"] == "2022-12-30"
    assert rows["dated"]["data_stale"] and rows["dated"]["data_age_days"] > 30
    assert rows["undated"]["summary"]["newest_data"] is None and not rows["undated"]["data_stale"]
    html = client.get("/").text
    assert "2030-12-31" not in html
    assert re.search(r'data-name="undated".*?<td class="data"><span class="missing"[^>]*>unknown<', html, re.S)
