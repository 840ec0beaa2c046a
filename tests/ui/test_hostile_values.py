"""Hostile and careless values in the registry: every page still renders them as text, safely."""

from __future__ import annotations

from fastapi.testclient import TestClient

from registry import ModelMetadata, ModelRegistry
from tests.ui.conftest import PREFECT_UI, metrics, request_approval


def test_the_resume_link_quotes_the_flow_run_id(client: TestClient, registry: ModelRegistry) -> None:
    model_id = registry.register_model({"x": 1}, ModelMetadata(model_name="evil", performance_metrics=metrics(0.5)))
    request_approval(registry, registry.get_model_info(model_id), None, ["r"], flow_run_id="../../evil?x=1#y")
    urls = {a["request"]["model_id"]: a["resume_url"] for a in client.get("/api/approvals").json()["approvals"]}
    assert urls[model_id] == f"{PREFECT_UI}/runs/flow-run/..%2F..%2Fevil%3Fx%3D1%23y"
    assert 'href="http://prefect.example:4200/runs/flow-run/..%2F..%2Fevil%3Fx%3D1%23y"' in client.get("/approvals").text
