"""Every page and its JSON twin over a registry on SQLite and PostgreSQL: content, errors, escaping, statements."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from deployments.ui.app import create_app
from registry import Approvals, ModelMetadata, ModelRegistry
from registry.replays import replay_model_name
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC
from registry.settings import Settings
from tasks.core.approvals.requests import pending_approvals
from tests.ui.conftest import PREFECT_UI, SCRIPT, Filled, fill, register_replay, request_approval, ui_settings
from tests.ui.statements import counted_statements

NAME = "m0_alpha158"


def _version(model_id: str) -> str:
    return model_id.split("_v", 1)[1]


def test_overview_shows_production_newest_and_waiting_per_name(client: TestClient, filled: Filled,
                                                              registry: ModelRegistry) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    api = client.get("/api/overview").json()
    assert [row["summary"]["model_name"] for row in api["names"]] == sorted(filled.ids)  # no replay's name
    for row in api["names"]:
        name = row["summary"]["model_name"]
        production = registry.get_production_model(name)
        assert production is not None and row["summary"]["production"]["model_id"] == production.model_id
        assert row["summary"]["production"]["performance_metrics"] == production.performance_metrics
        assert row["summary"]["newest"]["model_id"] == filled.ids[name][-1]  # the replay's windows came later
        assert row["pending_approvals"] == 1 and row["summary"]["versions"] == 3
        assert row["summary"]["replays"] == 1
        assert "1 replay<" in html_row(page.text, name)
        assert f'data-value="{production.performance_metrics["ic_mean"]}"' in html_row(page.text, name)
        assert f">{production.version}</a>" in html_row(page.text, name)
    assert api["pending_approvals"] == 2
    assert page.text.count("<tr data-name=") == 2 and ".replay-" not in page.text


def html_row(html: str, name: str) -> str:
    found = re.search(rf'<tr data-name="{re.escape(name)}">(.*?)</tr>', html, re.S)
    assert found is not None, name
    return found.group(1)


def test_a_name_with_only_a_replay_gets_an_overview_row_and_a_page(client: TestClient, registry: ModelRegistry) -> None:
    windows = register_replay(registry, "only_replayed", "abc123", windows=3)
    [row] = [r for r in client.get("/api/overview").json()["names"] if r["summary"]["model_name"] == "only_replayed"]
    assert row["summary"]["versions"] == 0 and row["summary"]["replays"] == 1 and row["summary"]["newest"] is None
    page = client.get("/api/models/only_replayed").json()["name"]
    assert page["total"] == 0 and [r["versions"] for r in page["replays"]] == [3]
    replay = client.get("/api/models/only_replayed", params={"replay_id": "abc123"}).json()["name"]
    assert [v["model_id"] for v in replay["versions"]] == windows[::-1]


def test_stale_badges_follow_the_stale_days_setting(registry: ModelRegistry, filled: Filled) -> None:
    with TestClient(create_app(ui_settings(stale_days=1), registry=registry)) as client:
        rows = client.get("/api/overview").json()["names"]
        assert all(r["data_stale"] for r in rows)  # the data ends in 2020
        assert not any(r["production_stale"] for r in rows)  # registered just now
        assert "stale data" in client.get("/").text


def test_model_page_lists_filters_and_pages_versions(client: TestClient, filled: Filled) -> None:
    everything = client.get(f"/api/models/{NAME}").json()
    assert everything["name"]["total"] == 3
    assert [v["model_id"] for v in everything["name"]["versions"]] == filled.ids[NAME][::-1]
    assert [p["version"] for p in everything["name"]["chart"]] == [_version(m) for m in filled.ids[NAME]]
    assert [p["model_id"] for p in everything["production_periods"]] == [filled.production[NAME]]
    assert [p["model_id"] for p in everything["pending"]] == [filled.ids[NAME][-1]]
    good = client.get(f"/api/models/{NAME}", params={"min": "ic_mean:0.015"}).json()["name"]
    assert [v["model_id"] for v in good["versions"]] == filled.ids[NAME][:0:-1]
    production = client.get(f"/api/models/{NAME}", params={"status": "production"}).json()["name"]
    assert [v["model_id"] for v in production["versions"]] == [filled.production[NAME]]
    second_page = client.get(f"/api/models/{NAME}", params={"per_page": 2, "page": 2}).json()
    assert [v["model_id"] for v in second_page["name"]["versions"]] == [filled.ids[NAME][0]]
    assert second_page["pages"] == 2

    html = client.get(f"/models/{NAME}").text
    for metric in ("ic_mean", "rank_ic", "annualized_return"):
        chart = re.search(rf'data-chart="metric-{metric}".*?</figure>', html, re.S)
        assert chart is not None and chart.group(0).count('class="pt"') == 3
    assert html.count('class="band"') == 3  # one production period, shaded on each chart
    assert f'href="{PREFECT_UI}/runs/flow-run/' in html and "beats the baseline" in html


def test_a_replay_is_listed_on_its_name_page_and_its_versions_shown_apart(client: TestClient, filled: Filled,
                                                                          registry: ModelRegistry) -> None:
    replay_id, windows = filled.replays[NAME]
    live = client.get(f"/api/models/{NAME}").json()
    assert not set(windows) & {v["model_id"] for v in live["name"]["versions"]}
    assert [p["version"] for p in live["name"]["chart"]] == [_version(m) for m in filled.ids[NAME]]
    [listed] = live["name"]["replays"]
    first = registry.get_model_info(windows[0])
    assert listed == {"replay_id": replay_id, "replay_name": replay_model_name(NAME, replay_id), "versions": 2,
                      "first_registered": first.created_at.isoformat().replace("+00:00", "Z"),
                      "last_registered": registry.get_model_info(windows[1]).created_at.isoformat().replace("+00:00", "Z")}
    html = client.get(f"/models/{NAME}").text
    assert f'href="/models/{NAME}?replay_id={replay_id}"' in html

    replay = client.get(f"/api/models/{NAME}", params={"replay_id": replay_id}).json()
    assert replay["name"]["model_name"] == NAME and replay["name"]["replay_id"] == replay_id
    assert replay["name"]["total"] == 2 and [v["model_id"] for v in replay["name"]["versions"]] == windows[::-1]
    assert [p["version"] for p in replay["name"]["chart"]] == ["1.0.0", "2.0.0"]
    assert replay["production_periods"] == [] and replay["pending"] == []
    assert {e["model_id"] for e in replay["name"]["history"]} == set(windows)
    assert [r["replay_id"] for r in replay["name"]["replays"]] == [replay_id]
    html = client.get(f"/models/{NAME}", params={"replay_id": replay_id}).text
    for metric in ("ic_mean", "rank_ic", "annualized_return"):
        chart = re.search(rf'data-chart="metric-{metric}".*?</figure>', html, re.S)
        assert chart is not None and chart.group(0).count('class="pt"') == 2 and 'class="band"' not in chart.group(0)
    for model_id in windows:
        assert f'<tr data-model-id="{model_id}">' in html
    assert not any(f'<tr data-model-id="{m}">' in html for m in filled.ids[NAME])
    assert 'name="replay_id" value="' + replay_id in html  # the filter form stays on the replay
    filtered = client.get(f"/api/models/{NAME}", params={"replay_id": replay_id, "min": "ic_mean:0.0215"}).json()
    assert [v["model_id"] for v in filtered["name"]["versions"]] == [windows[1]]
    # The replay's own name is the same page.
    assert client.get(f"/api/models/{replay_model_name(NAME, replay_id)}").json()["name"] == replay["name"]


def test_a_replay_version_page_links_back_to_its_replay_and_compares_with_live_production(
        client: TestClient, filled: Filled) -> None:
    replay_id, windows = filled.replays[NAME]
    api = client.get(f"/api/models/{replay_model_name(NAME, replay_id)}/versions/2.0.0").json()["version"]
    assert api["info"]["model_id"] == windows[1] and api["info"]["status"] == "registered"
    assert api["replay_of"] == NAME and api["replay_id"] == replay_id
    assert api["production_id"] == filled.production[NAME]
    html = client.get(f"/models/{replay_model_name(NAME, replay_id)}/versions/2.0.0").text
    assert f'href="/models/{NAME}?replay_id={replay_id}"' in html
    assert f'href="/compare?a={filled.production[NAME]}&amp;b={windows[1]}"' in html


def test_an_unknown_or_malformed_replay_id(client: TestClient) -> None:
    for path in (f"/models/{NAME}?replay_id=abcdef99", f"/api/models/{NAME}?replay_id=abcdef99"):
        answer = client.get(path)
        assert answer.status_code == 404 and "has no replay 'abcdef99'" in answer.text.replace("&#39;", "'"), path
    assert client.get("/api/models/nope_model?replay_id=abcdef99").status_code == 404
    for path in (f"/models/{NAME}?replay_id=replay-2020", f"/api/models/{NAME}?replay_id=ABC"):
        answer = client.get(path)
        assert answer.status_code == 422 and "replay_id" in answer.text, path


def test_version_page_shows_everything_about_a_version(client: TestClient, filled: Filled,
                                                       registry: ModelRegistry) -> None:
    model_id = filled.ids[NAME][2]
    info = registry.get_model_info(model_id)
    stored = registry.get_evaluation_series(model_id)
    api = client.get(f"/api/models/{NAME}/versions/{info.version}").json()
    assert api["version"]["info"] == info.model_dump(mode="json")
    assert api["series"][DAILY_IC] == stored[DAILY_IC].model_dump(mode="json")
    assert api["version"]["production_id"] == filled.production[NAME]
    html = client.get(f"/models/{NAME}/versions/{info.version}").text
    for key, values in stored.items():
        chart = re.search(rf'<figure class="chart" data-chart="{key}">.*?</figure>', html, re.S)
        assert chart is not None
        assert chart.group(0).count('class="pt"') == sum(v is not None for v in values.values)
    for field in (info.checksum, info.model_path, info.qlib_recorder_id, "Alpha158", "csi300"):
        assert field in html
    assert f'href="/compare?a={filled.production[NAME]}&amp;b={model_id}"' in html
    for name, value in info.performance_metrics.items():
        assert re.search(rf'data-metric="{name}"><th>{name}</th><td class="n"><span class="num" data-value="{value}">{value:.4f}<', html)


def test_a_version_evaluated_before_series_were_kept_says_not_recorded(client: TestClient, filled: Filled) -> None:
    first = _version(filled.ids[NAME][0])
    assert client.get(f"/api/models/{NAME}/versions/{first}").json()["series"] == {DAILY_IC: None, CUMULATIVE_EXCESS_RETURN: None}
    assert client.get(f"/models/{NAME}/versions/{first}").text.count("not recorded (evaluated before") == 2


def test_series_survive_a_purge_of_the_model_file(client: TestClient, filled: Filled, registry: ModelRegistry) -> None:
    model_id = filled.ids["m1_alpha158"][2]
    registry.set_model_status(model_id, "archived")
    registry.db.run(lambda s: s.execute(text(
        "UPDATE model_states SET archived_at = '2000-01-01' WHERE model_pk = (SELECT id FROM model_versions "
        "WHERE model_id = :m)"), {"m": model_id}))
    registry.archive_stale(max_age_days=10_000, keep_last=100, purge_archived_after_days=1)
    assert registry.get_model_info(model_id).purged_at is not None
    html = client.get(f"/models/m1_alpha158/versions/{_version(model_id)}").text
    assert "file purged" in html and html.count('class="pt"') > 20


def test_compare_shows_differences_and_both_curves(client: TestClient, filled: Filled, registry: ModelRegistry) -> None:
    a, b = filled.ids[NAME][1], filled.ids[NAME][2]
    api = client.get("/api/compare", params={"a": a, "b": b}).json()
    ic = next(row for row in api["comparison"]["metrics"] if row["name"] == "ic_mean")
    first, second = registry.get_model_info(a), registry.get_model_info(b)
    assert ic["difference"] == second.performance_metrics["ic_mean"] - first.performance_metrics["ic_mean"]
    assert [d["key"] for d in api["comparison"]["hyperparameters"]] == ["num_leaves"]
    html = client.get("/compare", params={"a": a, "b": b}).text
    chart = re.search(r'data-chart="compare-cum-excess-return".*?</figure>', html, re.S)
    assert chart is not None and chart.group(0).count("<path") == 2
    assert chart.group(0).count('class="pt"') == 31 + 32


def test_approvals_lists_waiting_candidates_with_comparison_and_resume_link(client: TestClient, filled: Filled) -> None:
    api = client.get("/api/approvals").json()["approvals"]
    assert [a["request"]["model_id"] for a in api] == filled.waiting
    assert all(a["request"]["production_model_id"] == filled.production[a["request"]["model_name"]] for a in api)
    assert all(a["production_now"] is None for a in api)  # production has not changed since the requests
    assert api[0]["resume_url"] == f"{PREFECT_UI}/runs/flow-run/11111111-0000-0000-0000-000000000000"
    html = client.get("/approvals").text
    assert html.count('class="external resume"') == 2
    card = re.search(rf'data-model-id="{filled.waiting[0]}".*?</section>', html, re.S)
    assert card is not None and "needs a person" in card.group(0)
    ic = api[0]["request"]["comparison"][[r["metric"] for r in api[0]["request"]["comparison"]].index("ic_mean")]
    difference = ic["candidate"] - ic["production"]
    assert '<tr data-metric="ic_mean" class="role-primary">' in card.group(0)
    assert f'data-value="{difference}"' in card.group(0)


def test_the_approvals_page_is_the_cli_list_rendered_again(client: TestClient, filled: Filled,
                                                           registry: ModelRegistry) -> None:
    """One query, two renderers: the page's requests are `qmp approvals list`'s (`pending_approvals`)."""
    listed = [p.model_dump(mode="json", exclude={"age_seconds"}) for p in pending_approvals(registry)]
    shown = [{k: v for k, v in a["request"].items() if k != "age_seconds"} for a in client.get("/api/approvals").json()["approvals"]]
    assert shown == listed and len(listed) == 2
    by_name = [p.model_id for p in pending_approvals(registry, model_name=NAME)]
    assert [p["model_id"] for p in client.get(f"/api/models/{NAME}").json()["pending"]] == by_name
    rows = {r["summary"]["model_name"]: r["pending_approvals"] for r in client.get("/api/overview").json()["names"]}
    assert rows == {name: sum(p["model_name"] == name for p in listed) for name in filled.ids}


def test_an_answered_request_is_no_longer_waiting(client: TestClient, filled: Filled, registry: ModelRegistry) -> None:
    Approvals(registry).decide(filled.waiting[0], "reject", approver="bob", comment="no")
    assert [a["request"]["model_id"] for a in client.get("/api/approvals").json()["approvals"]] == filled.waiting[1:]
    assert client.get("/api/overview").json()["pending_approvals"] == 1


def test_a_changed_production_is_flagged_on_the_approvals_page(client: TestClient, filled: Filled,
                                                               registry: ModelRegistry) -> None:
    registry.set_production_model(filled.ids[NAME][0], actor="carol", reason="roll back")
    [item] = [a for a in client.get("/api/approvals").json()["approvals"] if a["request"]["model_name"] == NAME]
    assert item["production_now"]["model_id"] == filled.ids[NAME][0]
    assert item["request"]["production_model_id"] == filled.production[NAME]


@pytest.mark.parametrize("path, named", [
    ("/models/nope_model", "'nope_model'"),
    (f"/models/{NAME}/versions/9.9.9", "'9.9.9'"),
    ("/models/nope_model/versions/1.0.0", "'nope_model'"),
    (f"/compare?a={NAME}_v1.0.0&b=ghost_v1", "'ghost_v1'"),
])
def test_unknown_names_and_versions_give_a_404_page_naming_them(client: TestClient, path: str, named: str) -> None:
    page = client.get(path)
    assert page.status_code == 404 and named in page.text.replace("&#39;", "'") and "<html" in page.text
    api = client.get("/api" + path)
    assert api.status_code == 404 and named in api.json()["detail"]


@pytest.mark.parametrize("query, reason", [
    ("page=0", "page"), ("per_page=abc", "per_page"), ("per_page=100000", "per_page"),
    ("status=retired", "status"), ("min=ic_mean:lots", "ic_mean:lots"), ("min=ic_mean", "METRIC:VALUE"),
    ("min=bad%20name!:1", "bad name!"),
])
def test_malformed_query_parameters_give_422_with_the_reason(client: TestClient, query: str, reason: str) -> None:
    page = client.get(f"/models/{NAME}?{query}")
    assert page.status_code == 422 and reason in page.text.replace("&#39;", "'") and "Traceback" not in page.text
    api = client.get(f"/api/models/{NAME}?{query}")
    assert api.status_code == 422 and any(reason in e for e in api.json()["errors"])


def test_compare_without_both_ids_is_a_422(client: TestClient) -> None:
    assert client.get("/compare?a=x").status_code == 422
    assert client.get("/api/compare").status_code == 422


def test_html_from_the_registry_is_escaped(registry: ModelRegistry, client: TestClient) -> None:
    model_id = registry.register_model({"x": 1}, ModelMetadata(
        model_name="escape_test", performance_metrics={"ic_mean": 0.01}, tags={"note": SCRIPT}, description=SCRIPT,
        hyperparameters={"evil": SCRIPT}, dataset_info={"instruments": SCRIPT, "handler": SCRIPT},
    ))
    request_approval(registry, registry.get_model_info(model_id), None, [SCRIPT], actor=SCRIPT)
    other = registry.register_model({"x": 2}, ModelMetadata(model_name="escape_test", performance_metrics={"ic_mean": 0.02}))
    for path in ("/", "/models/escape_test", "/models/escape_test/versions/1.0.0", "/approvals",
                 f"/compare?a={model_id}&b={other}", f"/models/{SCRIPT}", f"/models/escape_test?replay_id={SCRIPT}"):
        text = client.get(path).text
        assert "<script" not in text.lower(), path
    assert "&lt;script&gt;" in client.get("/models/escape_test/versions/1.0.0").text
    assert "&lt;script&gt;" in client.get("/approvals").text
    assert client.get("/").headers["content-security-policy"].startswith("default-src 'self'; script-src 'none'")


def test_a_database_that_is_down_gives_a_503_page(tmp_path: Path) -> None:
    settings = Settings(registry_dir=tmp_path / "reg", database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    with TestClient(create_app(ui_settings(), registry_settings=settings), raise_server_exceptions=False) as client:
        page = client.get("/")
        assert page.status_code == 503 and "database" in page.text and "Traceback" not in page.text
        assert "127.0.0.1:1" not in page.text
        api = client.get("/api/overview")
        assert api.status_code == 503 and "database" in api.json()["detail"]


def test_an_unexpected_error_shows_no_traceback(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.ui import views

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "overview", explode)
    page = client.get("/")
    assert page.status_code == 500 and "secret internals" not in page.text and "Traceback" not in page.text


PAGES = ["/", f"/models/{NAME}", f"/models/{NAME}?status=candidate&min=ic_mean:0.01", "/approvals"]


def test_statements_per_page_do_not_grow_with_names_versions_and_replays(registry: ModelRegistry,
                                                                         tmp_path: Path) -> None:
    small = fill(registry, names=2, versions=3, prefix="s")
    app = create_app(ui_settings(), registry=registry)

    def counts(filled: Filled) -> list[int]:
        name = sorted(filled.ids)[0]
        ids = filled.ids[name]
        replay_id = filled.replays[name][0]
        paths = ["/", f"/models/{name}", f"/models/{name}?status=candidate&min=ic_mean:0.01&page=1",
                 f"/models/{name}?replay_id={replay_id}", f"/models/{name}?replay_id={replay_id}&min=ic_mean:0.01",
                 f"/models/{replay_model_name(name, replay_id)}/versions/1.0.0",
                 f"/models/{name}/versions/{_version(ids[2])}", f"/compare?a={ids[1]}&b={ids[2]}", "/approvals"]
        found = []
        with TestClient(app) as client:
            client.get("/")  # open the registry's connections first
            for path in paths:
                with counted_statements(registry) as sent:
                    assert client.get(path).status_code == 200
                queries = [s for s in sent if s.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
                found.append((len(sent), len(queries)))
        return found

    before = counts(small)
    large = fill(registry, names=6, versions=8, prefix="l", replays_per_name=3, replay_windows=4)
    after = counts(large)
    assert after == before
    assert max(queries for _, queries in after) <= 7, after  # SQLite also counts each read's BEGIN and COMMIT


def test_overview_shows_the_newest_data_version_per_data_directory(client: TestClient, registry: ModelRegistry) -> None:
    from datetime import date

    from registry.data_versions import DataVersionRecord

    for end, fingerprint in ((date(2024, 9, 27), "aaa111"), (date(2024, 10, 9), "bbb222")):
        registry.record_data_version(DataVersionRecord(data_dir="/data/cn<x>", calendar_end=end, fingerprint=fingerprint,
                                                       days_added=3, source="table:/feed.parquet"))
    page = client.get("/").text
    row = re.search(r'<tr data-dir="/data/cn&lt;x&gt;">(.*?)</tr>', page, re.S)
    assert row is not None and "2024-10-09" in row.group(1) and "bbb222" in row.group(1) and "aaa111" not in page
