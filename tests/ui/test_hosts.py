"""The open mode's Host-header check (DNS rebinding): plain HTTP requests as curl sends them, and Chromium
resolving an attacker's host name to 127.0.0.1."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from deployments.ui.app import create_app
from registry import ModelRegistry
from tests.ui.conftest import Filled, ui_settings
from tests.ui.serving import served


@pytest.fixture
def open_page(registry: ModelRegistry, filled: Filled) -> Iterator[str]:
    settings = ui_settings(allowed_hosts=["registry.team.lan"], url="https://qmp.team.example/registry")
    with served(create_app(settings, registry=registry)) as url:
        yield url


def status_for_host(url: str, host: str | None, path: str = "/api/overview") -> int:
    """The status of GET `path` with this Host header (None: none sent), as `curl -H 'Host: ...'` does."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST",
                                  "qmp.team.example", "registry.team.lan:{port}"])
def test_loopback_names_the_public_url_and_allowed_hosts_are_served(open_page: str, host: str) -> None:
    port = urlsplit(open_page).port
    assert status_for_host(open_page, host.format(port=port)) == 200
    assert status_for_host(open_page, host.format(port=port), "/") == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "qmp.team.example.attacker.example", "", None])
def test_any_other_host_is_refused_with_400(open_page: str, host: str | None) -> None:
    port = urlsplit(open_page).port
    assert status_for_host(open_page, None if host is None else host.format(port=port)) == 400
    assert status_for_host(open_page, None if host is None else host.format(port=port), "/models/m0_alpha158") == 400


def test_allowed_hosts_read_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.ui.settings import UISettings

    monkeypatch.setenv("QMP_UI_ALLOWED_HOSTS", "a.example, b.example:8765")
    assert UISettings(_env_file=None).allowed_hosts == ["a.example", "b.example:8765"]  # type: ignore[call-arg]


@pytest.mark.browser
def test_a_rebound_host_name_in_chromium_gets_400_and_no_data(open_page: str, chromium: Callable[..., Any]) -> None:
    port = urlsplit(open_page).port
    browser = chromium("--host-resolver-rules=MAP attacker.example 127.0.0.1, MAP registry.team.lan 127.0.0.1")
    page = browser.new_page()
    response = page.goto(f"http://attacker.example:{port}/api/overview")
    assert response.status == 400
    assert "m0_alpha158" not in page.content()
    response = page.goto(f"http://registry.team.lan:{port}/")
    assert response.status == 200 and "m0_alpha158" in page.content()
    assert page.goto(f"http://127.0.0.1:{port}/").status == 200
