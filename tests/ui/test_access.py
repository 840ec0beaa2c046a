"""The access token: 401 everywhere without it, 200 with it (bearer header or login cookie); `qmp ui`'s binding."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deployments.ui.app import create_app
from deployments.ui.settings import UISettings, UnsafeBindError, check_bind, is_loopback
from registry import ModelRegistry
from tests.ui.conftest import Filled, ui_settings

TOKEN = "s3cret-token-for-tests"
NAME = "m0_alpha158"


def _paths(filled: Filled) -> list[str]:
    first, second = filled.ids[NAME][1], filled.ids[NAME][2]
    version = second.split("_v", 1)[1]
    pages = ["/", f"/models/{NAME}", f"/models/{NAME}/versions/{version}", f"/compare?a={first}&b={second}", "/approvals"]
    return pages + ["/api" + p if p != "/" else "/api/overview" for p in pages] + ["/api/openapi.json"]


@pytest.fixture
def guarded(registry: ModelRegistry, filled: Filled) -> Iterator[TestClient]:
    with TestClient(create_app(ui_settings(token=TOKEN), registry=registry)) as client:
        yield client


def test_without_the_token_every_page_and_api_answers_401(guarded: TestClient, filled: Filled) -> None:
    for path in _paths(filled):
        answer = guarded.get(path)
        assert answer.status_code == 401, path
        assert filled.production[NAME] not in answer.text, path  # nothing of the registry leaks
    assert guarded.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/", cookies={"qmp_ui_session": "forged"}).status_code == 401
    assert 'name="token"' in guarded.get("/").text  # the 401 page is the login form


def test_with_the_token_every_page_and_api_answers_200(guarded: TestClient, filled: Filled) -> None:
    for path in _paths(filled):
        assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, path


def test_logging_in_sets_a_cookie_that_opens_every_page(guarded: TestClient, filled: Filled) -> None:
    refused = guarded.post("/login", data={"token": "nope", "next": "/approvals"}, follow_redirects=False)
    assert refused.status_code == 401 and "not valid" in refused.text
    answer = guarded.post("/login", data={"token": TOKEN, "next": "https://evil.example/"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.cookies.get("qmp_ui_session")
    assert cookie and TOKEN not in cookie and "httponly" in answer.headers["set-cookie"].lower()
    for path in _paths(filled):
        assert guarded.get(path, cookies={"qmp_ui_session": cookie}).status_code == 200, path


def test_binding_beyond_loopback_needs_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.com")
    with pytest.raises(UnsafeBindError, match="QMP_UI_TOKEN"):
        check_bind("0.0.0.0", UISettings(_env_file=None, token=None))  # type: ignore[call-arg]
    with pytest.raises(UnsafeBindError):
        check_bind("0.0.0.0", UISettings(_env_file=None, token="  "))  # type: ignore[call-arg]
    check_bind("0.0.0.0", UISettings(_env_file=None, token=TOKEN))  # type: ignore[call-arg]
    check_bind("127.0.0.1", UISettings(_env_file=None, token=None))  # type: ignore[call-arg]


def test_qmp_ui_refuses_a_public_address_without_a_token_in_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    qmp = Path(sys.executable).parent / "qmp"
    done = subprocess.run([str(qmp), "ui", "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 2
    assert "refusing to bind to 0.0.0.0" in done.stderr and "Traceback" not in done.stderr


def test_the_web_app_imports_neither_prefect_nor_qlib() -> None:
    code = ("import sys, deployments.ui.app, deployments.ui.server; "
            "print(sorted(m for m in ('prefect', 'qlib', 'mlflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_prefect_ui_url_is_derived_from_the_api_url() -> None:
    derived = UISettings(_env_file=None, prefect_api_url="http://prefect:4200/api/")  # type: ignore[call-arg]
    assert derived.prefect_ui() == "http://prefect:4200"
    explicit = UISettings(_env_file=None, prefect_ui_url="https://ui.example/", prefect_api_url="http://x/api")  # type: ignore[call-arg]
    assert explicit.prefect_ui() == "https://ui.example"
