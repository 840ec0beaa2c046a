"""A real retrain waits for approval, production changes meanwhile, and `qmp approve` shows the re-scored check.

The retrain flow records where its candidate was evaluated; when a better production model arrives while it
waits, `qmp approve` re-scores that model on the candidate's window and refuses, naming the window and both
models' metric there. When production is rolled back to the candidate's own artifact, the two tie: refused too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deployments.cli import app
from flows.retrain import ApprovalSettings, CandidateOutcome, RetrainResult
from registry import Approvals, ModelMetadata, ModelRegistry, ModelStatus
from registry.approvals import EvaluatedOn
from registry.policy import Action, PromotionPolicy
from tests.flows.retrain_runs import STRONG, WEAK, run_retrain
from tests.flows.test_retrain_flow import _paused_run
from tests.threads import in_thread

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
NAME = "stale_rescored"
SHUFFLED = copy.deepcopy(STRONG)  # the same model and features, trained on permuted labels: no skill
SHUFFLED["task"]["dataset"].update({"class": "ShuffledLabelDatasetH", "module_path": "tests.qlib.shuffled_dataset"})
WINDOW = re.compile(r"window (\d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d)")


def _table_row(output: str, metric: str) -> list[str]:
    """The candidate, production and difference cells of ``metric``'s row in the stale-approval check's table."""
    [row] = [line for line in output.splitlines() if line.startswith("│") and line.split("│")[1].strip() == metric]
    return [cell.strip() for cell in row.split("│")[2:-1]]


@pytest.fixture
def pipeline(tmp_path: Path, flow_data: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    registry = ModelRegistry(tmp_path / "registry")
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    monkeypatch.setenv("QMP_PROVIDER_URI", str(flow_data))
    monkeypatch.setenv("QMP_MLFLOW_URI", mlflow_uri)
    yield registry
    registry.close()


def test_qmp_approve_refuses_when_a_better_production_arrived_naming_the_window_and_both_metrics(
    pipeline: ModelRegistry, flow_data: Path
) -> None:
    first = run_retrain(NAME, STRONG)
    assert first.outcome == CandidateOutcome.PROMOTED and first.model_id
    thread, box = in_thread(lambda: run_retrain(
        NAME, SHUFFLED, policy=PromotionPolicy(approval="always"),
        approval=ApprovalSettings(timeout_seconds=600, poll_interval_seconds=1),
    ))
    _paused_run(NAME, box, timeout=300)
    candidate = next(m for m in pipeline.list_models() if m.model_id != first.model_id)
    request = Approvals(pipeline).require(candidate.model_id)
    assert request.production_model_id == first.model_id
    assert request.evaluated_on == EvaluatedOn(segment="test", provider_uri=str(flow_data.resolve()))

    # Meanwhile someone promotes another version of the strong model, whose registered metrics (measured
    # elsewhere, here made up) say it is far worse than the candidate.
    strong = pipeline.get_model_info(first.model_id)
    better = pipeline.register_model(pipeline.get_model(first.model_id), ModelMetadata(
        model_name=NAME, performance_metrics={"ic_mean": -0.9}, dataset_info=strong.dataset_info,
        experiment_name=strong.experiment_name, qlib_recorder_id=strong.qlib_recorder_id,
    ))
    pipeline.set_production_model(better, reason="promoted by hand while the candidate waited")

    refused = CliRunner().invoke(app, ["approve", candidate.model_id, "--approver", "alice"])
    assert refused.exit_code == 1, refused.output
    found = re.search(r"refused: .*", refused.output)
    assert found is not None, refused.output
    check_line = found[0]
    assert refused.output.count("\n", refused.output.index("stale-approval check (fails)"), found.start()) > 4  # table first
    window = WINDOW.search(check_line)
    assert window is not None, check_line
    shown = re.search(r"not better: ic_mean (\S+) vs production (\S+) ", check_line)
    assert shown is not None, check_line
    # Production was trained on the same segments: both are judged on the test days after its training.
    assert "both models compared on the" in check_line
    assert float(shown[2]) > float(shown[1]) and float(shown[2]) != -0.9  # re-scored, not the registered -0.9
    days = re.search(r"both models compared on the \d+ days after it \((\S+)\)", check_line)
    assert days is not None, check_line
    assert f"both scored on {days[1]}" in " ".join(refused.output.split())  # the table's caption
    assert _table_row(refused.output, "ic_mean")[:2] == [f"{float(shown[1]):.4f}", f"{float(shown[2]):.4f}"]
    assert f"{first.model_id} -> {better}" in check_line
    assert "no longer beats production" in refused.output and Approvals(pipeline).require(candidate.model_id).pending

    rejected = CliRunner().invoke(app, ["reject", candidate.model_id, "--approver", "alice", "--comment", "stale"])
    assert rejected.exit_code == 0, rejected.output
    thread.join(timeout=180)
    assert "error" not in box, box.get("error")
    result: RetrainResult = box["result"]
    assert result.decision == Action.NEEDS_APPROVAL and result.outcome == CandidateOutcome.REJECTED
    assert pipeline.get_production_model(NAME).model_id == better  # type: ignore[union-attr]


def test_qmp_approve_keeps_a_candidate_when_production_is_rolled_back_to_its_own_artifact(
    pipeline: ModelRegistry,
) -> None:
    """Production rolled back to a version with the candidate's artifact ties it: never "better", so never promoted.

    The candidate's metrics come from its evaluation (Qlib's float32 predict in one batch); the stale check
    re-scores production from features it loads itself, in float64 (the candidate's saved dataset holds no raw
    features to share), so the same Linear model's ic_means differ by rounding noise, of a sign that depends
    on the data and the BLAS.
    """
    name = "apr"
    thread, box = in_thread(lambda: run_retrain(
        name, WEAK, policy=PromotionPolicy(approval="always"),
        approval=ApprovalSettings(timeout_seconds=600, poll_interval_seconds=1),
    ))
    _paused_run(name, box, timeout=300)
    [candidate] = pipeline.list_models()
    same = pipeline.register_model(pipeline.get_model(candidate.model_id), ModelMetadata(
        model_name=name, performance_metrics=candidate.performance_metrics, dataset_info=candidate.dataset_info,
        experiment_name=candidate.experiment_name, qlib_recorder_id=candidate.qlib_recorder_id,
    ))
    pipeline.set_production_model(same, reason="the version the candidate reproduces")
    later = pipeline.register_model({"stand-in": True}, ModelMetadata(model_name=name, performance_metrics={"ic_mean": 0.001}))
    pipeline.set_production_model(later, reason="a later version while the candidate waited")
    rolled = CliRunner().invoke(app, ["models", "rollback", name])
    assert rolled.exit_code == 0 and same in rolled.output, rolled.output

    refused = CliRunner().invoke(app, ["approve", candidate.model_id, "--approver", "alice"])
    assert refused.exit_code == 1, refused.output
    found = re.search(r"refused: .*", refused.output)
    assert found is not None and "stale-approval check (fails)" in refused.output, refused.output
    assert _table_row(refused.output, "ic_mean")[2] == "+0.0000"  # a tie is drawn as no difference
    tie = re.search(r"not better: ic_mean (\S+) vs production (\S+) is a tie within numerical noise "
                    r"\(\|gain\| (\S+) <= tolerance ([^)\s]+)\)", found[0])
    assert tie is not None, found[0]
    assert float(tie[3]) <= float(tie[4]) and f"none -> {same}" in found[0]
    assert "no longer beats production" in refused.output and Approvals(pipeline).require(candidate.model_id).pending
    assert pipeline.get_production_model(name).model_id == same  # type: ignore[union-attr]
    assert pipeline.get_model_info(candidate.model_id).status != ModelStatus.PRODUCTION

    rejected = CliRunner().invoke(app, ["reject", candidate.model_id, "--approver", "alice", "--comment", "a tie"])
    assert rejected.exit_code == 0, rejected.output
    thread.join(timeout=180)
    assert "error" not in box, box.get("error")
    assert box["result"].outcome == CandidateOutcome.REJECTED
