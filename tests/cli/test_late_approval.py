"""A late answer is one line: the refusal, not a passing stale-approval check followed by it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry import ModelMetadata, ModelRegistry
from registry.approvals import Approvals
from tests.cli.test_qmp_models import qmp


def test_a_late_approve_prints_only_the_refusal(
    registry: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    model_id = registry.register_model({"w": 1}, ModelMetadata(model_name="late", performance_metrics={"ic_mean": 0.1}))
    Approvals(registry).request(
        model_id, production_model_id=None, candidate_metrics={"ic_mean": 0.1}, production_metrics=None,
        reasons=["better"], policy={}, timeout=timedelta(seconds=60), now=datetime.now(UTC) - timedelta(hours=1))
    code, out, err = qmp("approve", model_id, "--approver", "alice", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("refused: ") and "stale-approval check" not in err
