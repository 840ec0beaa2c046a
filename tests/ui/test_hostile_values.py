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


def test_differences_are_coloured_by_the_metrics_direction_and_integers_read_as_integers(
        client: TestClient, registry: ModelRegistry) -> None:
    old = {"ic_mean": 0.02, "ic_std": 0.10, "turnover": 0.30, "max_drawdown": -0.10, "test_days": 162.0, "foo": 1.0}
    new = {"ic_mean": 0.03, "ic_std": 0.12, "turnover": 0.20, "max_drawdown": -0.05, "test_days": 170.0, "foo": 2.0}
    a = registry.register_model({"v": 1}, ModelMetadata(model_name="dir", performance_metrics=old))
    b = registry.register_model({"v": 2}, ModelMetadata(model_name="dir", performance_metrics=new))
    html = client.get(f"/compare?a={a}&b={b}").text
    verdicts = dict(re.findall(r'<tr data-metric="([^"]+)">.*?<td class="n diff ?([a-z]*)">', html, re.S))
    assert verdicts == {"ic_mean": "better", "ic_std": "worse", "turnover": "better", "max_drawdown": "better",
                        "test_days": "", "foo": ""}
    assert re.search(r'data-metric="test_days">.*?>162<.*?>170<.*?>\+8<', html, re.S)


def test_each_production_period_is_a_band_labelled_with_its_version(client: TestClient,
                                                                   registry: ModelRegistry) -> None:
    ids = [registry.register_model({"v": v}, ModelMetadata(model_name="periods", performance_metrics=metrics(0.01 * v)))
           for v in range(1, 5)]
    registry.set_production_model(ids[0])
    registry.register_model({"v": 5}, ModelMetadata(model_name="periods", performance_metrics=metrics(0.05)))
    registry.set_production_model(ids[1])
    registry.register_model({"v": 6}, ModelMetadata(model_name="periods", performance_metrics=metrics(0.06)))
    html = client.get("/models/periods").text
    chart = re.search(r'data-chart="metric-ic_mean".*?</figure>', html, re.S)
    assert chart is not None
    labels = re.findall(r'<g class="period (band-\d)" data-period="([^"]+)">', chart.group(0))
    first, second = (model_id.removeprefix("periods_v") for model_id in ids[:2])
    assert labels == [("band-0", first), ("band-1", second)]
    assert f"<title>production: {first}</title>" in chart.group(0)
