"""A model's data version links to its ingest's record: the version page's link, the data directory's page with
that version highlighted, its JSON twin, and what an unknown or malformed data version gets."""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient

from registry import ModelMetadata, ModelRegistry
from registry.data_versions import DataVersionRecord
from tests.ui.conftest import SCRIPT

HOSTILE_DIR = "/data/cn<b>x</b>"


def ingest(registry: ModelRegistry, data_dir: str, end: date, fingerprint: str, **values: object) -> DataVersionRecord:
    record = {"data_dir": data_dir, "calendar_end": end, "fingerprint": fingerprint, "days_added": 1,
              "rows_added": 300, "source": "table:/feed.parquet", **values}
    return registry.record_data_version(DataVersionRecord.model_validate(record))


def register(registry: ModelRegistry, name: str, data_version: str | None) -> None:
    tags = {"data_version": data_version} if data_version else {}
    registry.register_model({"n": name}, ModelMetadata(model_name=name, version="1.0.0", tags=tags,
                                                       dataset_info={"instruments": "csi300", "handler": "Alpha158"},
                                                       performance_metrics={"ic_mean": 0.02}))


def data_field(page: str) -> str:
    found = re.search(r'<dd data-field="data_version">(.*?)</dd>', page, re.S)
    assert found is not None
    return found.group(1)


def test_a_versions_data_version_links_to_its_record_highlighted_among_its_directorys(
    client: TestClient, registry: ModelRegistry
) -> None:
    first = ingest(registry, HOSTILE_DIR, date(2024, 9, 27), "aaa111", corrections={"mode": "apply", "rows": 2})
    ingest(registry, "/data/us", date(2024, 9, 27), "ccc333")
    newest = ingest(registry, HOSTILE_DIR, date(2024, 10, 9), "bbb222", source=SCRIPT)
    register(registry, "trained_on_old_data", "2024-09-27/aaa111")

    field = data_field(client.get("/models/trained_on_old_data/versions/1.0.0").text)
    assert f'href="/data?version=2024-09-27%2Faaa111#dv-{first.id}"' in field and ">2024-09-27/aaa111</a>" in field

    page = client.get("/data", params={"version": "2024-09-27/aaa111"})
    assert page.status_code == 200
    rows = [(int(i), 'class="linked"' in attributes) for i, attributes in re.findall(r'<tr id="dv-(\d+)"([^>]*)>', page.text)]
    assert rows == [(newest.id, False), (first.id, True)]  # its directory's, newest first
    assert "ccc333" not in page.text and "/data/cn&lt;b&gt;x&lt;/b&gt;" in page.text
    assert "<script" not in page.text.lower() and "<b>" not in page.text and "mode=apply" in page.text

    api = client.get("/api/data", params={"version": "2024-09-27/aaa111"}).json()
    assert api["data_dir"] == HOSTILE_DIR and api["linked"]["id"] == first.id
    assert [v["fingerprint"] for v in api["versions"]] == ["bbb222", "aaa111"]
    listing = client.get("/api/data", params={"dir": HOSTILE_DIR}).json()
    assert listing["linked"] is None and [v["id"] for v in listing["versions"]] == [newest.id, first.id]

    overview = client.get("/").text
    assert "/data?dir=%2Fdata%2Fcn%3Cb%3Ex%3C%2Fb%3E" in overview and "/data?version=2024-10-09%2Fbbb222" in overview


def test_a_data_version_no_ingest_recorded_is_shown_without_a_link(client: TestClient, registry: ModelRegistry) -> None:
    ingest(registry, "/data/cn", date(2024, 9, 27), "aaa111")
    register(registry, "hand_imported", "2024-09-27/not-ingested")
    register(registry, "other_day", "2024-09-30/aaa111")  # the fingerprint of another calendar end: not that record
    register(registry, "unversioned", None)
    for name in ("hand_imported", "other_day"):
        field = data_field(client.get(f"/models/{name}/versions/1.0.0").text)
        assert "<a " not in field and "no ingest record" in field, name
    assert data_field(client.get("/models/unversioned/versions/1.0.0").text) == "not recorded"
    api = client.get("/api/models/hand_imported/versions/1.0.0").json()["version"]
    assert api["data_version"] == "2024-09-27/not-ingested" and api["data_version_record"] is None


def test_unknown_and_malformed_data_versions_get_one_clear_line(client: TestClient, registry: ModelRegistry) -> None:
    ingest(registry, "/data/cn", date(2024, 9, 27), "aaa111")
    unknown = client.get("/api/data", params={"version": "2024-09-27/bbb222"})
    assert unknown.status_code == 404 and "data version '2024-09-27/bbb222' is not recorded" in unknown.json()["detail"]
    assert client.get("/data", params={"version": "2024-09-27/bbb222"}).status_code == 404
    no_dir = client.get("/api/data", params={"dir": "/data/none"})
    assert no_dir.status_code == 404 and "'/data/none' has no data version" in no_dir.json()["detail"]
    assert client.get("/api/data", params={"dir": "/data/\x00"}).status_code == 404
    for params in ({"version": "2024-13-01/aaa111"}, {"version": "aaa111"}, {}, {"dir": "/data/cn", "version": "x/y"}):
        bad = client.get("/api/data", params=params)
        assert bad.status_code == 422, params
        assert "data version" in bad.json()["errors"][0] or "either" in bad.json()["errors"][0], params
    page = client.get("/data", params={"version": SCRIPT})
    assert page.status_code == 422 and "<script" not in page.text.lower()
