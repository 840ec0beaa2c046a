"""Links from Prefect artifacts (the decision markdown, the approval form) to the registry page use QMP_UI_URL."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from flows.reporting import comparison_markdown
from registry import ModelRegistry
from registry.policy import Action, Decision, PromotionPolicy
from registry.views.promotion import compare_for_promotion
from tests.ui.conftest import Filled

NAME = "m0_alpha158"


def test_decision_markdown_links_to_the_version_and_comparison_pages(
    registry: ModelRegistry, filled: Filled, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate = registry.get_model_info(filled.ids[NAME][2])
    production = registry.get_model_info(filled.production[NAME])
    comparison = compare_for_promotion(candidate, production, PromotionPolicy(),
                                       Decision(action=Action.NEEDS_APPROVAL, reasons=["better"]))
    monkeypatch.delenv("QMP_UI_URL", raising=False)
    assert "](" not in comparison_markdown(comparison)
    monkeypatch.setenv("QMP_UI_URL", "https://models.example/")
    links = re.findall(r"\]\((https://models\.example[^)]*)\)", comparison_markdown(comparison))
    assert len(links) == 2
    for link in links:
        page = client.get(link.removeprefix("https://models.example"))
        assert page.status_code == 200 and candidate.model_id in page.text, link
    assert client.get("/versions/ghost_v1").status_code == 404
