"""Every page in a real browser (Debian's chromium driven by Playwright) over a registry filled by real retrain
runs of small synthetic data, one of them paused for approval, and a rolling replay's windows registered the way
the rolling flow registers them: numbers, charts, links, console, phone width.

Screenshots of each page go to test-artifacts/screenshots/ (desktop and phone width).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from registry import ModelFilter, ModelInfo, ModelRegistry
from registry.policy import Action, PromotionPolicy
from registry.replays import replay_model_name
from registry.settings import Settings
from tests.threads import in_thread, paused_run
from tests.ui.conftest import register_replay, ui_settings
from tests.ui.serving import served

pytestmark = [pytest.mark.browser, pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
NAME = "alpha158_ui"
REPLAY_ID = "0123456789ab"
REPLAY_WINDOWS = 3
PHONE = {"width": 390, "height": 844}


@dataclass
class Retrained:
    registry: ModelRegistry
    settings: Settings
    production_id: str
    waiting_id: str
    paused_run_id: str
    prefect_ui: str
    replay_ids: list[str]  # the replay's window versions, oldest first

    def live_versions(self) -> list[ModelInfo]:
        return self.registry.list_models(ModelFilter(model_name=NAME))


@pytest.fixture(scope="module")
def retrained(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retrained]:
    """Two retrain runs: LightGBM (promoted), then the linear model with manual approval, paused until this
    module's tests are done (then rejected). The runs' QMP_* variables are set only while they start and end:
    left set, they would decide the data and registry of every later test of the worker."""
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL

    from flows.retrain import ApprovalSettings
    from tasks.core.data.synthetic import synthesize
    from tests.flows.retrain_runs import STRONG, WEAK, run_retrain

    base = tmp_path_factory.mktemp("ui-retrain")
    data = synthesize(base / "qlib", instruments=24, seed=5).out
    settings = Settings(registry_dir=base / "registry")  # type: ignore[call-arg]
    variables = {"QMP_REGISTRY_DIR": str(settings.registry_dir), "QMP_PROVIDER_URI": str(data),
                 "QMP_MLFLOW_URI": f"sqlite:///{base / 'mlflow.db'}"}

    def runs_environment() -> pytest.MonkeyPatch:
        env = pytest.MonkeyPatch()
        for name, value in variables.items():
            env.setenv(name, value)
        env.delenv("QMP_DATABASE_URL", raising=False)
        return env

    env = runs_environment()
    try:
        first = run_retrain(NAME, STRONG)
        assert first.decision == Action.PROMOTE
        # On this data the linear model's IC beats LightGBM's (as in tests/flows): approval is asked for.
        thread, box = in_thread(lambda: run_retrain(
            NAME, WEAK, policy=PromotionPolicy(approval="manual"),
            approval=ApprovalSettings(timeout_seconds=1800, poll_interval_seconds=1)))
        paused = paused_run({"model_name": NAME}, box, 300, "retrain run")
    finally:
        env.undo()
    registry = ModelRegistry.from_settings(settings)
    waiting = registry.list_models(ModelFilter(model_name=NAME))[0]
    replay_ids = register_replay(registry, NAME, REPLAY_ID, windows=REPLAY_WINDOWS)
    try:
        yield Retrained(registry, settings, first.model_id, waiting.model_id, str(paused.id),
                        str(PREFECT_API_URL.value()).removesuffix("/api"), replay_ids)
    finally:
        env = runs_environment()  # the resumed run reads its settings again
        try:
            resume_flow_run(paused.id, run_input={"decision": "reject", "approver": "ui-tests", "comment": "browser tests done"},
                            _sync=True)  # type: ignore[call-arg]
            thread.join(120)
        finally:
            env.undo()
            registry.close()


@pytest.fixture(scope="module")
def ui_url(retrained: Retrained) -> Iterator[str]:
    """The app, served by uvicorn on a free port, over the retrained registry (the settings' factory)."""
    from deployments.ui.app import create_app

    app = create_app(ui_settings(prefect_ui_url=retrained.prefect_ui), registry_settings=retrained.settings)
    with served(app) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def _visit(browser: Any, url: str, shot: str) -> tuple[Any, Any]:
    """Open `url` at desktop and phone width; checks no console error and no horizontal overflow on the phone.
    Returns (desktop page, its context); the caller closes the context."""
    for label, viewport in (("phone", PHONE), ("desktop", {"width": 1280, "height": 900})):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message, errors=errors: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.screenshot(path=str(SCREENSHOTS / f"{shot}-{label}.png"), full_page=True)
        assert errors == [], f"{url} at {label} width: {errors}"
        if label == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{url} overflows a {PHONE['width']} px screen by {overflow} px"
            context.close()
    return page, context


def _links_work(page: Any) -> None:
    hrefs = set(page.eval_on_selector_all("a[href^='/']", "links => links.map(a => a.getAttribute('href'))"))
    for href in sorted(hrefs):
        assert page.request.get(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + href).status == 200, href


def _value(page: Any, selector: str) -> float:
    return float(page.locator(selector).first.get_attribute("data-value"))


def test_overview(browser: Any, ui_url: str, retrained: Retrained) -> None:
    page, context = _visit(browser, ui_url + "/", "overview")
    production = retrained.registry.get_production_model(NAME)
    assert production is not None and production.model_id == retrained.production_id
    row = f"tr[data-name='{NAME}']"
    assert page.locator(f"{row} td.production a").inner_text() == production.version
    for metric in ("ic_mean", "rank_ic", "annualized_return"):
        assert _value(page, f"{row} td[data-metric='{metric}'] .num") == production.performance_metrics[metric]
    assert page.locator(f"{row} td.pending").inner_text() == "1"
    newest = retrained.registry.get_model_info(retrained.waiting_id)
    assert page.locator(f"{row} td.newest a").inner_text() == newest.version
    assert page.locator("table.overview tbody tr").count() == 1  # the replay is no row of its own
    assert "1 replay" in page.locator(row).inner_text()
    _links_work(page)
    context.close()


def test_model_page(browser: Any, ui_url: str, retrained: Retrained) -> None:
    page, context = _visit(browser, f"{ui_url}/models/{NAME}", "model")
    versions = retrained.live_versions()
    assert page.locator("table.versions tbody tr").count() == len(versions) == 2
    for metric in ("ic_mean", "rank_ic", "annualized_return"):
        chart = page.locator(f"figure[data-chart='metric-{metric}']")
        assert chart.locator("circle.pt").count() == sum(metric in v.performance_metrics for v in versions)
        assert chart.locator("rect.band").count() == 1  # one production period so far
    for info in versions:
        assert _value(page, f"tr[data-model-id='{info.model_id}'] td[data-metric='ic_mean'] .num") == info.performance_metrics["ic_mean"]
    events = retrained.registry.history(model_name=NAME)
    assert page.locator("ol.timeline li").count() == len(events)
    assert {"registered", "promoted", "approval_requested"} <= {e.event for e in events}
    flow_links = page.eval_on_selector_all("ol.timeline a.external", "links => links.map(a => a.href)")
    assert f"{retrained.prefect_ui}/runs/flow-run/{retrained.paused_run_id}" in flow_links
    replay = page.locator(f"table.replays tr[data-replay-id='{REPLAY_ID}']")
    assert replay.locator("td.n").inner_text() == str(REPLAY_WINDOWS)
    assert replay.locator("a").get_attribute("href") == f"/models/{NAME}?replay_id={REPLAY_ID}"
    _links_work(page)
    context.close()


def test_replay_page(browser: Any, ui_url: str, retrained: Retrained) -> None:
    page, context = _visit(browser, f"{ui_url}/models/{NAME}?replay_id={REPLAY_ID}", "replay")
    rows = page.locator("table.versions tbody tr")
    assert [rows.nth(i).get_attribute("data-model-id") for i in range(rows.count())] == retrained.replay_ids[::-1]
    for model_id in retrained.replay_ids:
        info = retrained.registry.get_model_info(model_id)
        assert info.model_name == replay_model_name(NAME, REPLAY_ID)
        assert _value(page, f"tr[data-model-id='{model_id}'] td[data-metric='ic_mean'] .num") == info.performance_metrics["ic_mean"]
    for metric in ("ic_mean", "rank_ic", "annualized_return"):
        chart = page.locator(f"figure[data-chart='metric-{metric}']")
        assert chart.locator("circle.pt").count() == REPLAY_WINDOWS and chart.locator("rect.band").count() == 0
    assert page.locator("ol.timeline li").count() == REPLAY_WINDOWS  # each window's registration
    _links_work(page)
    context.close()


def test_version_pages(browser: Any, ui_url: str, retrained: Retrained) -> None:
    for info in retrained.live_versions():
        page, context = _visit(browser, f"{ui_url}/models/{NAME}/versions/{info.version}", f"version-{info.version}")
        for metric, value in info.performance_metrics.items():
            assert _value(page, f"tr[data-metric='{metric}'] .num") == value
        series = retrained.registry.get_evaluation_series(info.model_id)
        assert set(series) == {"daily_ic", "cum_excess_return"}
        for key, values in series.items():
            expected = sum(v is not None for v in values.values)
            assert expected > 20
            assert page.locator(f"figure[data-chart='{key}'] circle.pt").count() == expected
        assert page.locator("[data-field='checksum']").inner_text() == info.checksum
        assert page.locator("[data-field='qlib_recorder_id']").inner_text() == info.qlib_recorder_id
        assert int(page.locator("[data-field='size_bytes']").get_attribute("data-value")) == info.size_bytes
        _links_work(page)
        context.close()


def test_compare_page(browser: Any, ui_url: str, retrained: Retrained) -> None:
    a, b = retrained.production_id, retrained.waiting_id
    page, context = _visit(browser, f"{ui_url}/compare?a={a}&b={b}", "compare")
    first, second = retrained.registry.get_model_info(a), retrained.registry.get_model_info(b)
    difference = second.performance_metrics["ic_mean"] - first.performance_metrics["ic_mean"]
    assert _value(page, "tr[data-metric='ic_mean'] td.diff .num") == difference
    chart = page.locator("figure[data-chart='compare-cum-excess-return']")
    assert chart.locator("g.line").count() == 2
    assert chart.locator("circle.pt").count() == sum(
        sum(v is not None for v in retrained.registry.get_evaluation_series(m)["cum_excess_return"].values) for m in (a, b))
    assert page.locator("table.diff").count() >= 1  # the two configs differ (linear vs LightGBM)
    _links_work(page)
    context.close()


def test_approvals_page(browser: Any, ui_url: str, retrained: Retrained) -> None:
    page, context = _visit(browser, f"{ui_url}/approvals", "approvals")
    cards = page.locator("section.approval")
    assert cards.count() == 1 and cards.first.get_attribute("data-model-id") == retrained.waiting_id
    assert page.locator("a.resume").get_attribute("href") == f"{retrained.prefect_ui}/runs/flow-run/{retrained.paused_run_id}"
    waiting = retrained.registry.get_model_info(retrained.waiting_id)
    assert _value(page, "section.approval tr[data-metric='ic_mean'] td:nth-child(3) .num") == waiting.performance_metrics["ic_mean"]
    _links_work(page)
    context.close()


def test_error_pages_render_without_console_errors(browser: Any, ui_url: str) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(f"{ui_url}/models/{NAME}/versions/99.0.0")
    assert response is not None and response.status == 404
    assert re.search("99.0.0", page.locator("p.error-message").inner_text())
    page.screenshot(path=str(SCREENSHOTS / "not-found-phone.png"), full_page=True)
    assert page.goto(f"{ui_url}/models/{NAME}?page=0").status == 422  # type: ignore[union-attr]
    page.screenshot(path=str(SCREENSHOTS / "invalid-query-phone.png"), full_page=True)
    assert errors == []
    context.close()
