"""The overview's live IC column and drift badge, and its JSON twin: the production model's own newest live days,
the verdict `qmp monitor` gives (registry.views.monitor.drift_of), a constant number of statements."""

from __future__ import annotations

import re
import statistics
from datetime import date, timedelta

from fastapi.testclient import TestClient

from deployments.ui.app import create_app
from registry import ModelMetadata, ModelRegistry, ScoredDay
from registry.drift import make_rule
from registry.live import LiveScore
from registry.views.monitor import drift_of
from tests.ui.conftest import fill, ui_settings
from tests.ui.statements import counted_statements

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(40)]


def production(registry: ModelRegistry, name: str, ic_mean: float = 0.05, ic_std: float = 0.1) -> str:
    model_id = registry.register_model({"name": name}, ModelMetadata(
        model_name=name, performance_metrics={"ic_mean": ic_mean, "ic_std": ic_std}))
    registry.set_production_model(model_id)
    return model_id


def live(registry: ModelRegistry, name: str, model_id: str, ics: list[float | None], start: int = 0) -> None:
    """Stored predictions and live metrics of `model_id` on DAYS[start:start + len(ics)]."""
    days = DAYS[start:start + len(ics)]
    registry.write_predictions(name, [ScoredDay(model_id, d, [("A", 1.0)]) for d in days], data_version="v1")
    registry.write_live_metrics(name, [LiveScore(model_id=model_id, trading_date=d, ic=ic, rank_ic=ic, instruments=40,
                                                 signal_return=0.001, top_k=50) for d, ic in zip(days, ics, strict=True)],
                                data_version="v1")


def row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-name="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert found is not None, name
    return found.group(1)


def live_of(api: dict, name: str) -> dict | None:
    return next(r["summary"]["live"] for r in api["names"] if r["summary"]["model_name"] == name)


def test_overview_shows_the_production_models_live_ic_and_a_drift_badge_as_qmp_monitor_judges(
    client: TestClient, registry: ModelRegistry
) -> None:
    drifting = production(registry, "drifting")
    live(registry, "drifting", drifting, [-0.03] * 23)
    healthy = production(registry, "healthy")
    ics: list[float | None] = [0.04 + 0.001 * i for i in range(30)]
    ics[-3] = None  # a day without an IC is left out of the mean and the count
    live(registry, "healthy", healthy, ics)
    production(registry, "fresh")  # production, no live day yet
    replaced = production(registry, "replaced")  # the first production model's days are not the new one's
    live(registry, "replaced", replaced, [-0.5] * 20)
    newer = production(registry, "replaced")
    live(registry, "replaced", newer, [0.07, 0.09, 0.08], start=20)
    restored = production(registry, "rolled_back")  # production again: its days before the other model's count
    live(registry, "rolled_back", restored, [-0.2] * 18)
    live(registry, "rolled_back", production(registry, "rolled_back"), [0.3] * 10, start=18)
    assert registry.rollback("rolled_back").model_id == restored
    live(registry, "rolled_back", restored, [-0.1] * 4, start=28)
    floored = production(registry, "floored")  # its own rule: a floor above its live IC
    registry.set_drift_rule("floored", make_rule(window=12, min_days=5, floor=0.1))
    live(registry, "floored", floored, [0.06] * 15)

    api = client.get("/api/overview").json()
    for name in ("drifting", "healthy", "replaced", "rolled_back", "floored"):
        expected = drift_of(registry, name)
        assert expected is not None and live_of(api, name)["drift"] == expected.model_dump(mode="json"), name
    assert [live_of(api, n)["drift"]["verdict"] for n in ("drifting", "healthy", "replaced", "floored")] == [
        "drifted", "healthy", "too few live days", "drifted"]
    present = [ic for ic in ics[-20:] if ic is not None]
    assert live_of(api, "healthy")["days"] == 19 and live_of(api, "healthy")["window"] == 20
    assert abs(live_of(api, "healthy")["mean_ic"] - statistics.fmean(present)) < 1e-12
    assert live_of(api, "replaced")["days"] == 3 and abs(live_of(api, "replaced")["mean_ic"] - 0.08) < 1e-12
    assert live_of(api, "rolled_back")["days"] == 20 and live_of(api, "rolled_back")["drift"]["verdict"] == "drifted"
    assert abs(live_of(api, "rolled_back")["mean_ic"] - (16 * -0.2 + 4 * -0.1) / 20) < 1e-12
    assert live_of(api, "fresh") is None and live_of(api, "m0_alpha158") is None  # production, never scored

    page = client.get("/").text
    assert 'data-verdict="drifted"' in row(page, "drifting") and 'class="badge drift"' in row(page, "drifting")
    assert 'href="/models/drifting/live"' in row(page, "drifting") and "20 d" in row(page, "drifting")
    assert "below the floor" in row(page, "floored") and 'class="badge drift"' in row(page, "floored")
    assert 'data-verdict="healthy"' in row(page, "healthy") and "badge drift" not in row(page, "healthy")
    assert 'data-value="0.08"' in row(page, "replaced") and "3 d" in row(page, "replaced")
    assert "no live day scored yet" in row(page, "fresh")
    assert "badge drift" not in row(page, "m0_alpha158")


def test_a_name_without_production_has_an_empty_live_cell(registry: ModelRegistry) -> None:
    registry.register_model({"x": 1}, ModelMetadata(model_name="candidate_only", performance_metrics={"ic_mean": 0.1}))
    with TestClient(create_app(ui_settings(), registry=registry)) as client:
        assert '<td class="n live"></td>' in row(client.get("/").text, "candidate_only")
        assert live_of(client.get("/api/overview").json(), "candidate_only") is None


def test_overview_statements_do_not_grow_with_names_that_have_live_days_and_rules(registry: ModelRegistry) -> None:
    app = create_app(ui_settings(), registry=registry)

    def add(prefix: str, names: int) -> None:
        filled = fill(registry, names=names, versions=2, prefix=prefix, replays_per_name=0)
        for i, (name, model_id) in enumerate(sorted(filled.production.items())):
            live(registry, name, model_id, [0.01 * (i % 3) - 0.01] * 25)
            registry.set_drift_rule(name, make_rule(window=10 + i, min_days=5))

    def overview_statements() -> int:
        with TestClient(app) as client:
            client.get("/")  # open the registry's connections first
            with counted_statements(registry) as sent:
                assert client.get("/").status_code == 200
        return len(sent)

    add("s", 2)
    small = overview_statements()
    add("l", 6)
    assert overview_statements() == small
