"""What `qmp retrain` and the Prefect artifacts show: decision first, the deciding metrics first, the outcome."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from deployments.cli.retrain import print_result
from flows.reporting import comparison_markdown
from flows.retrain import CandidateOutcome, RetrainResult
from registry import ModelInfo, ModelStatus
from registry.policy import Action, Decision, Guardrail, PromotionPolicy
from registry.views.promotion import PromotionComparison, compare_for_promotion

METRICS = {"annualized_return": 0.12, "ic_mean": 0.051, "icir": 0.4, "max_drawdown": -0.08, "win_rate": 0.55}
OLD = {"annualized_return": 0.10, "ic_mean": 0.042, "icir": 0.3, "max_drawdown": -0.09, "win_rate": 0.5}
POLICY = PromotionPolicy(approval="manual", guardrails=[Guardrail(metric="max_drawdown", min_value=-0.15)])
DECISION = Decision(action=Action.NEEDS_APPROVAL,
                    reasons=["better: ic_mean 0.051 vs production 0.042", "approval mode is manual: a person must approve"])


def _info(model_id: str, metrics: dict[str, float], status: ModelStatus) -> ModelInfo:
    return ModelInfo(model_id=model_id, model_name="lgbm", version=model_id.rsplit("_v", 1)[1], status=status,
                     performance_metrics=metrics, training_date=date(2026, 12, 1), created_at="2026-12-01T00:00:00Z",
                     model_path="m", metadata_path="m", artifact_location="m",
                     updated_at="2026-12-01T00:00:00Z", checksum="0" * 64, size_bytes=1, model_type="LGBModel")


def _comparison() -> PromotionComparison:
    return compare_for_promotion(_info("lgbm_v1.1.0", METRICS, ModelStatus.CANDIDATE),
                                 _info("lgbm_v1.0.0", OLD, ModelStatus.PRODUCTION), POLICY, DECISION)


def _result(outcome: CandidateOutcome, by: str | None, status: str) -> RetrainResult:
    return RetrainResult(
        model_id="lgbm_v1.1.0", version="1.1.0", status=status, metrics=METRICS, decision=Action.NEEDS_APPROVAL,
        reasons=DECISION.reasons, production_model_id="lgbm_v1.0.0", message="", outcome=outcome, decided_by=by,
        comparison=_comparison(),
    )


@pytest.mark.parametrize(("outcome", "by", "status", "expected"), [
    (CandidateOutcome.APPROVED, "erin", "production", "approved and promoted by erin: lgbm_v1.1.0 is production"),
    (CandidateOutcome.REJECTED, "erin", "candidate", "rejected by erin: lgbm_v1.1.0 stays candidate"),
    (CandidateOutcome.TIMED_OUT, None, "candidate", "approval timed out: nobody answered, lgbm_v1.1.0 stays candidate"),
])
def test_the_printed_result_says_what_happened_and_fills_the_production_columns(
    capsys: pytest.CaptureFixture[str], outcome: CandidateOutcome, by: str | None, status: str, expected: str,
) -> None:
    print_result(_result(outcome, by, status))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "policy decision: needs_approval"
    assert lines[1].strip() == "- better: ic_mean 0.051 vs production 0.042"
    assert f"outcome: {expected}" in out
    rows = {line.split("│")[1].split()[0]: line for line in lines if line.count("│") >= 4}
    assert "0.0420" in rows["ic_mean"] and "+0.0090" in rows["ic_mean"]  # production and difference filled
    metric_order = [name for name in rows if name in METRICS]
    assert metric_order[:2] == ["ic_mean", "max_drawdown"]
    assert metric_order[2:] == sorted(metric_order[2:])


def test_markdown_puts_decision_and_reasons_above_the_deciding_metrics_and_the_rest_below() -> None:
    text = comparison_markdown(_comparison())
    lines = text.splitlines()
    at = {key: next(i for i, line in enumerate(lines) if key in line)
          for key in ("Decision: needs_approval", "- better: ic_mean", "| ic_mean", "| max_drawdown", "Other metrics",
                      "| annualized_return", "| win_rate")}
    assert list(at.values()) == sorted(at.values())
    # Narrow enough for the Resume dialog (~470 px): four short columns, no row much wider than its metric name.
    assert max(len(line) for line in lines if line.startswith("|")) <= 56
    assert "on window" not in text  # the column appears only once production is re-scored on the window


def test_the_table_artifact_rows_are_metrics_only() -> None:
    from flows.reporting import _table_row

    rows = [_table_row(row) for row in _comparison().rows()]
    assert [r["metric"] for r in rows][:2] == ["ic_mean", "max_drawdown"]
    assert "decision" not in {r["metric"] for r in rows}
    assert all(r["candidate"] not in {a.value for a in Action} for r in rows)


def test_the_demo_hint_names_a_qmp_that_works_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.cli.demo import qmp_command

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "qmp").write_text("#!/bin/sh\n")
    (bin_dir / "qmp").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(bin_dir / "qmp"), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert qmp_command() == ".venv/bin/qmp"  # not on PATH: the path from here
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert qmp_command() == "qmp"  # on PATH: the name alone
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert qmp_command() == str(tmp_path.name and Path(tmp_path.name) / ".venv" / "bin" / "qmp")
