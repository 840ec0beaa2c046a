"""Hostile and careless values in a real browser (Debian's chromium): long names and reasons, bidi overrides,
unicode and `<` in hyperparameters, keys one version lacks. Every page fits a 390 px screen, the overview shows
all its columns at 1280 px, values read as text, and no bidi control reaches the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from deployments.ui.app import create_app
from registry import ModelMetadata, ModelRegistry
from tests.ui.conftest import metrics, request_approval, ui_settings
from tests.ui.serving import served

pytestmark = [pytest.mark.browser]
LONG_NAME = "n" + "x" * 99  # the longest name the registry accepts
REASON = "because" + "A" * 3000  # one unbroken word
BIDI = "ok \u202egnp.exe\u202c done \u2066isolated\u2069"


@pytest.fixture(scope="module")
def hostile_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page over the hostile registry; its two versions are 1.0.0 and 2.0.0."""
    registry = ModelRegistry(tmp_path_factory.mktemp("hostile") / "registry")
    first = registry.register_model({"a": 1}, ModelMetadata(
        model_name=LONG_NAME, version="1.0.0", performance_metrics={**metrics(0.02), "test_days": 162.0},
        hyperparameters={"omega": "\u03a9mega <b>", "layers": [64, 32], "only_here": 1}, description=BIDI))
    second = registry.register_model({"a": 2}, ModelMetadata(
        model_name=LONG_NAME, version="2.0.0", performance_metrics={**metrics(0.03), "test_days": 162.0},
        hyperparameters={"omega": "\u03a9 2", "layers": [64]}))
    registry.set_production_model(first, actor="alice", reason=REASON)
    request_approval(registry, registry.get_model_info(second), registry.get_model_info(first), [REASON, BIDI])
    for n in range(3):
        registry.register_model({"n": n}, ModelMetadata(model_name=f"m{n}" + "y" * 90, performance_metrics=metrics(0.01)))
    app = create_app(ui_settings(prefect_ui_url="http://prefect.example:4200"), registry=registry)
    with served(app) as url:
        yield url
    registry.close()


def _pages(url: str) -> list[str]:
    name = quote(LONG_NAME, safe="")
    return [f"{url}/", f"{url}/models/{name}", f"{url}/models/{name}/versions/1.0.0",
            f"{url}/models/{name}/versions/2.0.0", f"{url}/approvals",
            f"{url}/compare?a={name}_v1.0.0&b={name}_v2.0.0"]


def _open(browser: Any, url: str, width: int) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    assert page.goto(url).status == 200, url
    return context, page


def test_no_page_is_wider_than_a_390_px_screen(browser: Any, hostile_url: str) -> None:
    for url in _pages(hostile_url):
        context, page = _open(browser, url, 390)
        try:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
            if page.locator(".scroll").count():
                hint = page.evaluate("getComputedStyle(document.querySelector('.scroll'), '::before').content")
                assert "scrolls sideways" in hint, url
        finally:
            context.close()


def test_the_overview_shows_every_column_at_1280_px_with_the_full_name_on_hover(browser: Any, hostile_url: str) -> None:
    context, page = _open(browser, hostile_url + "/", 1280)
    try:
        rights = page.eval_on_selector_all("table.overview thead th", "ths => ths.map(th => th.getBoundingClientRect().right)")
        assert len(rights) == 10 and max(rights) <= 1280, rights
        link = page.locator(f"tr[data-name='{LONG_NAME}'] a.clip")
        assert link.get_attribute("title") == LONG_NAME
    finally:
        context.close()


def test_values_read_as_text_and_bidi_controls_are_neutralised(browser: Any, hostile_url: str) -> None:
    for url in _pages(hostile_url):
        context, page = _open(browser, url, 1280)
        try:
            text = page.evaluate("document.body.innerText")
            assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), url
            assert "\\u" not in text and '"\\u003c' not in text, url
            if "/versions/1.0.0" in url:
                assert "\u03a9mega <b>" in text and "[64, 32]" in text
                assert page.locator("tr[data-metric='test_days'] .num").inner_text() == "162"
            if "/compare" in url:
                assert page.locator("span.absent").first.inner_text() == "missing"
            if "/approvals" in url:
                assert page.locator("q.reason").first.get_attribute("title") == REASON
        finally:
            context.close()
