"""The retrain, promote and rollback flows on a temporary Prefect server, training real Qlib models."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from mlflow.tracking import MlflowClient
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run

from flows.promotion import promote, rollback
from flows.retrain import ApprovalSettings, CandidateOutcome, RetrainResult
from registry import ModelInfo, ModelMetadata, ModelRegistry, ModelStatus
from registry.policy import Action, PromotionPolicy
from tasks.registry_steps import register_model
from tests.conftest import ON_BOTH_BACKENDS
from tests.flows.retrain_runs import STRONG, WEAK, run_retrain
from tests.threads import in_thread, paused_run

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

@pytest.fixture
def pipeline(registry: ModelRegistry, flow_data: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """The flows find the test's registry, data and recorder database through the users' settings."""
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    monkeypatch.setenv("QMP_PROVIDER_URI", str(flow_data))
    monkeypatch.setenv("QMP_MLFLOW_URI", mlflow_uri)
    return registry


@ON_BOTH_BACKENDS
def test_first_run_is_promoted_and_a_worse_run_is_kept_with_reasons(pipeline: ModelRegistry) -> None:
    first = run_retrain("alpha158", STRONG)
    assert first.decision == Action.PROMOTE
    assert first.status == "production"
    assert first.metrics["ic_mean"] > 0.02
    assert {"icir", "rank_ic", "annualized_return", "max_drawdown", "win_rate"} <= set(first.metrics)

    second = run_retrain("alpha158", WEAK, policy=PromotionPolicy(min_improvement=0.05))
    assert second.decision == Action.KEEP
    assert second.production_model_id == first.model_id
    # What `qmp retrain` prints: the production model it was compared with, and what happened.
    assert (first.outcome, first.decided_by, first.comparison.production_id) == (CandidateOutcome.PROMOTED, "retrain-flow", None)
    assert second.comparison.production_id == first.model_id
    assert second.comparison.production_registered_metrics == first.metrics
    assert second.outcome == CandidateOutcome.KEPT
    assert any("improvement too small" in r or "not better" in r for r in second.reasons)

    production = pipeline.get_production_model("alpha158")
    assert production is not None and production.model_id == first.model_id
    models = pipeline.list_models()
    assert [m.model_id for m in models] == [second.model_id, first.model_id]
    assert pipeline.get_model_info(second.model_id).status != ModelStatus.PRODUCTION
    registered = pipeline.get_model_info(first.model_id)
    assert registered.qlib_recorder_id and registered.experiment_name == "alpha158"
    assert registered.flow_run_id is not None
    assert registered.dataset_info is not None and registered.dataset_info.handler == "Alpha158"
    # Qlib's own online tooling sees the same production model.
    tags = MlflowClient(tracking_uri=os.environ["QMP_MLFLOW_URI"]).get_run(registered.qlib_recorder_id).data.tags
    assert tags["online_status"] == "online"

    runs = [pipeline.get_model_info(r.model_id).flow_run_id for r in (first, second)]
    with get_client(sync_client=True) as client:
        tables = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["model-comparison-alpha158"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(r) for r in runs if r]),
        ))
        limit = client.read_global_concurrency_limit_by_name("qmp-promote-alpha158")
        names = [client.read_flow_run(UUID(r)).name for r in runs if r]
    for table in tables:  # metrics only, the deciding one first; the decision is in the description
        metrics = [row["metric"] for row in json.loads(table.data)]
        assert metrics[0] == "ic_mean" and "decision" not in metrics and set(first.metrics) <= set(metrics)
        assert (table.description or "").split(": ", 1)[1].startswith(("promote", "keep"))
    # Each run published its table (a loaded SQLite-backed Prefect server can store a retried request twice).
    assert {str(table.flow_run_id) for table in tables} == {r for r in runs if r} and len(runs) == 2
    assert limit.limit == 1
    # Run names are unique and readable: the model name, then the UTC date and time to the second.
    assert len(set(names)) == 2 and all(re.fullmatch(r"retrain-alpha158-\d{4}-\d{2}-\d{2}-\d{6}", n) for n in names)


def _paused_run(model_name: str, box: dict[str, Any], timeout: float = 240) -> FlowRun:
    return paused_run({"model_name": model_name}, box, timeout, "retrain run")


@pytest.fixture
def first_production(pipeline: ModelRegistry) -> ModelInfo:
    """A production model with an IC that any trained model here beats."""
    model_id = pipeline.register_model(
        {"stand-in": True}, ModelMetadata(model_name="approval_demo", performance_metrics={"ic_mean": 0.001})
    )
    return pipeline.set_production_model(model_id, reason="baseline")


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "rejected"])
def test_manual_mode_pauses_until_a_person_decides(
    pipeline: ModelRegistry, first_production: ModelInfo, approve: bool
) -> None:
    manual = PromotionPolicy(approval="manual")
    thread, box = in_thread(lambda: run_retrain(
        "approval_demo", STRONG, policy=manual, approval=ApprovalSettings(timeout_seconds=300, poll_interval_seconds=1)
    ))
    paused = _paused_run("approval_demo", box)
    candidate_id = pipeline.list_models()[0].model_id
    assert pipeline.list_models()[0].model_id != first_production.model_id
    resume_flow_run(paused.id, run_input={"decision": "approve" if approve else "reject", "approver": "alice",
                                         "comment": "checked the backtest"})
    thread.join(timeout=180)
    assert "error" not in box, box.get("error")
    result: RetrainResult = box["result"]
    assert result.decision == Action.NEEDS_APPROVAL
    assert result.outcome == (CandidateOutcome.APPROVED if approve else CandidateOutcome.REJECTED) and result.decided_by == "alice"
    assert result.comparison.production_id == first_production.model_id
    production = pipeline.get_production_model("approval_demo")
    assert production is not None
    history = pipeline.history(model_id=candidate_id)
    if approve:
        assert production.model_id == candidate_id
        promoted = [e for e in history if e.event == "promoted"]
        assert promoted and promoted[-1].actor == "alice" and promoted[-1].reason == "checked the backtest"
    else:
        assert production.model_id == first_production.model_id
        assert pipeline.get_model_info(candidate_id).status == ModelStatus.CANDIDATE
        rejected = [e for e in history if e.event == "approval_rejected"]
        assert rejected and rejected[-1].actor == "alice"


def test_manual_mode_without_an_answer_times_out_and_leaves_a_candidate(
    pipeline: ModelRegistry, first_production: ModelInfo
) -> None:
    result = run_retrain(
        "approval_demo", STRONG, policy=PromotionPolicy(approval="manual"),
        approval=ApprovalSettings(timeout_seconds=6, poll_interval_seconds=1),
    )
    assert "no approval within 6 s" in result.message
    assert result.outcome == CandidateOutcome.TIMED_OUT and result.decided_by is None
    production = pipeline.get_production_model("approval_demo")
    assert production is not None and production.model_id == first_production.model_id
    assert pipeline.get_model_info(result.model_id).status == ModelStatus.CANDIDATE
    assert [e.event for e in pipeline.history(model_id=result.model_id)][-1] == "approval_timed_out"


def test_always_mode_asks_a_person_even_when_the_candidate_is_not_better(pipeline: ModelRegistry) -> None:
    strong = pipeline.register_model({"stand-in": True}, ModelMetadata(model_name="always_demo",
                                                                       performance_metrics={"ic_mean": 0.9}))
    pipeline.set_production_model(strong, reason="baseline nobody beats")
    thread, box = in_thread(lambda: run_retrain(
        "always_demo", WEAK, policy=PromotionPolicy(approval="always"),
        approval=ApprovalSettings(timeout_seconds=300, poll_interval_seconds=1),
    ))
    paused = _paused_run("always_demo", box)
    resume_flow_run(paused.id, run_input={"decision": "reject", "approver": "bob", "comment": "agreed, keep it"})
    thread.join(timeout=180)
    assert "error" not in box, box.get("error")
    result: RetrainResult = box["result"]
    assert result.decision == Action.NEEDS_APPROVAL and result.outcome == CandidateOutcome.REJECTED
    # The stand-in production model has no recorder, so it cannot be re-scored on the candidate's window:
    # always (like manual) asks a person instead of keeping the candidate silently.
    assert any("could not be scored" in r for r in result.reasons)
    assert pipeline.get_production_model("always_demo").model_id == strong  # type: ignore[union-attr]


ATTEMPTS: list[int] = []


@flow(retries=1, retry_delay_seconds=0)
def register_then_crash(name: str) -> str:
    """Registers with the real task, then fails on the first attempt only (as a crash after registering would)."""
    info = register_model({"weights": [1.0, 2.0]}, ModelMetadata(model_name=name, performance_metrics={"ic_mean": 0.03}))
    ATTEMPTS.append(1)
    if len(ATTEMPTS) == 1:
        raise RuntimeError("crash after registration")
    return info.model_id


@ON_BOTH_BACKENDS
def test_a_retried_run_registers_its_model_only_once(pipeline: ModelRegistry) -> None:
    ATTEMPTS.clear()
    model_id = register_then_crash("retried")
    assert len(ATTEMPTS) == 2
    models = pipeline.list_models()
    assert [m.model_id for m in models] == [model_id]
    assert [e.event for e in pipeline.history(model_name="retried")] == ["registered"]


def test_promote_and_rollback_flows_record_who_and_why(pipeline: ModelRegistry) -> None:
    ids = [
        pipeline.register_model({"w": i}, ModelMetadata(model_name="manual", performance_metrics={"ic_mean": 0.01 * i}))
        for i in range(1, 3)
    ]
    promote(model_id=ids[0], approver="bob", reason="first model")
    promote(model_id=ids[1], approver="carol", reason="better IC")
    assert pipeline.get_production_model("manual").model_id == ids[1]  # type: ignore[union-attr]
    restored = rollback(model_name="manual", approver="dave", reason="v1.1.0 misbehaves live")
    assert restored.model_id == ids[0]
    assert pipeline.get_production_model("manual").model_id == ids[0]  # type: ignore[union-attr]
    last = pipeline.history(model_name="manual")[-1]
    assert (last.event, last.actor, last.reason) == ("rolled_back", "dave", "v1.1.0 misbehaves live")


def test_promotion_moves_qlibs_online_tag_to_the_new_production_recorder(pipeline: ModelRegistry) -> None:
    tracking = MlflowClient(tracking_uri=os.environ["QMP_MLFLOW_URI"])
    experiment = tracking.create_experiment(f"online-tags-{time.time_ns()}")
    runs = [tracking.create_run(experiment).info.run_id for _ in range(2)]
    ids = [
        pipeline.register_model({"w": i}, ModelMetadata(model_name="tagged", qlib_recorder_id=run, performance_metrics={"ic_mean": 0.01 * (i + 1)}))
        for i, run in enumerate(runs)
    ]
    promote(model_id=ids[0], approver="bob", reason="first")
    promote(model_id=ids[1], approver="bob", reason="second")
    assert [tracking.get_run(run).data.tags["online_status"] for run in runs] == ["offline", "online"]


def test_rollback_refuses_a_tampered_previous_model(pipeline: ModelRegistry) -> None:
    ids = [
        pipeline.register_model({"w": i}, ModelMetadata(model_name="tampered", performance_metrics={"ic_mean": 0.01 * i}))
        for i in range(1, 3)
    ]
    pipeline.set_production_model(ids[0])
    pipeline.set_production_model(ids[1])
    Path(pipeline.get_model_info(ids[0]).model_path).write_bytes(b"not the model")
    with pytest.raises(Exception, match="checksum"):
        rollback(model_name="tampered", approver="dave", reason="try")
    assert pipeline.get_production_model("tampered").model_id == ids[1]  # type: ignore[union-attr]
