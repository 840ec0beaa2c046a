"""The approval path of the retrain flow on a temporary Prefect server, answered from the CLI and the "UI".

The waiting run is a small flow that calls the retrain flow's own `request_approval` for a registered
stand-in model (no Qlib training: the approval path is what is under test). Outside a deployment it
waits with a blocking pause, which `qmp approve` resumes through Prefect's API like the Resume form does.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run
from typer.testing import CliRunner

from deployments.cli import app
from flows.approval import ApprovalSettings, request_approval
from registry import Approvals, ApprovalState, ModelMetadata, ModelRegistry, ModelStatus
from registry.policy import PromotionPolicy, decide_promotion
from registry.settings import load_settings
from tasks.core.approvals.requests import take_answer
from tasks.core.lifecycle import open_registry
from tests.conftest import ON_BOTH_BACKENDS
from tests.threads import in_thread, paused_run

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]
MANUAL = PromotionPolicy(approval="manual")


@flow(name="approval-probe")
def ask_for(model_id: str, timeout_seconds: int = 120) -> str:
    registry = open_registry(load_settings())
    info = registry.get_model_info(model_id)
    production = registry.get_production_model(info.model_name)
    decision = decide_promotion(info.performance_metrics, production.performance_metrics if production else None, MANUAL)
    settings = ApprovalSettings(timeout_seconds=timeout_seconds, poll_interval_seconds=1)
    _, _, _, message = request_approval(info, production, decision, MANUAL, settings, f"approve {model_id}?")
    return message


@pytest.fixture
def env(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry.registry_dir))
    monkeypatch.setenv("QMP_DATABASE_URL", registry.database_url)
    monkeypatch.setenv("QMP_MLFLOW_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return registry


def _model(registry: ModelRegistry, name: str, ic: float, production: bool = False) -> str:
    model_id = registry.register_model({"ic": ic}, ModelMetadata(model_name=name, performance_metrics={"ic_mean": ic}))
    if production:
        registry.set_production_model(model_id, reason="baseline")
    return model_id


def _waiting(model_id: str, box: dict[str, Any], timeout: float = 90) -> FlowRun:
    return paused_run({"model_id": model_id}, box, timeout, "approval run")


def _qmp(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _events(registry: ModelRegistry, model_id: str) -> list[tuple[str, str]]:
    return [(e.event, e.actor) for e in registry.history(model_id=model_id)]


@ON_BOTH_BACKENDS
def test_qmp_approve_resumes_the_waiting_run_which_promotes_once(env: ModelRegistry) -> None:
    _model(env, "cli_ok", 0.01, production=True)
    candidate = _model(env, "cli_ok", 0.05)
    thread, box = in_thread(lambda: ask_for(candidate))
    _waiting(candidate, box)

    listed = _qmp("approvals", "list")
    assert listed.exit_code == 0 and candidate in listed.output and "ic_mean" in listed.output

    done = _qmp("approve", candidate, "--approver", "alice", "--comment", "checked the backtest")
    assert done.exit_code == 0, done.output
    # The stale-approval check as a table (production unchanged: the request's comparison), then one answer line.
    assert done.output.startswith("stale-approval check (ok)") and "│ ic_mean" in done.output, done.output
    answer = done.output.rstrip("\n").splitlines()[-1]
    assert answer.startswith(f"{candidate} approved by alice; flow run ") and answer.endswith("it promotes the model")
    thread.join(timeout=60)
    assert box.get("result") == "alice approved: " + candidate + " is production", box
    assert env.get_production_model("cli_ok").model_id == candidate  # type: ignore[union-attr]
    assert _events(env, candidate)[1:] == [("approval_requested", "retrain-flow"), ("approved", "alice"),
                                           ("promoted", "alice")]

    again = _qmp("approve", candidate, "--approver", "bob")
    assert again.exit_code == 1 and "already approved by alice" in again.output
    assert _events(env, candidate)[-1] == ("approval_refused", "bob")


def test_the_ui_answer_loses_to_the_decision_already_taken_and_is_recorded_as_refused(env: ModelRegistry) -> None:
    candidate = _model(env, "ui_race", 0.05)
    thread, box = in_thread(lambda: ask_for(candidate))
    run = _waiting(candidate, box)
    # The CLI has decided (registry first), but the UI's Resume reaches Prefect before the CLI's resume does.
    assert take_answer(env, candidate, "reject", approver="bob", comment="too risky", close_on_stale=False,
                       settings=load_settings()).decided
    resume_flow_run(run.id, run_input={"decision": "approve", "approver": "alice", "comment": "", "force": False})
    thread.join(timeout=60)
    assert "bob rejected" in box.get("result", ""), box
    assert env.get_production_model("ui_race") is None
    assert _events(env, candidate)[-2:] == [("approval_rejected", "bob"), ("approval_refused", "alice")]
    late = _qmp("approve", candidate, "--approver", "carol")
    assert late.exit_code == 1 and "already rejected by bob at" in late.output


def test_a_newer_candidate_supersedes_and_ends_the_older_waiting_run(env: ModelRegistry) -> None:
    older, newer = _model(env, "sup_flow", 0.04), _model(env, "sup_flow", 0.05)
    old_thread, old_box = in_thread(lambda: ask_for(older))
    _waiting(older, old_box)
    new_thread, new_box = in_thread(lambda: ask_for(newer))
    _waiting(newer, new_box)
    old_thread.join(timeout=60)
    assert "superseded" in old_box.get("result", ""), old_box
    assert Approvals(env).require(older).state == ApprovalState.SUPERSEDED
    assert "approval_superseded" in [e for e, _ in _events(env, older)]
    refused = _qmp("approve", older, "--approver", "alice")
    assert refused.exit_code == 1 and "superseded" in refused.output
    assert _qmp("reject", newer, "--approver", "alice", "--comment", "not now").exit_code == 0
    new_thread.join(timeout=60)
    assert env.get_model_info(newer).status == ModelStatus.CANDIDATE


def test_a_stale_approval_is_refused_with_the_reason_unless_forced(env: ModelRegistry) -> None:
    _model(env, "stale", 0.01, production=True)
    candidate = _model(env, "stale", 0.05)
    thread, box = in_thread(lambda: ask_for(candidate))
    _waiting(candidate, box)
    better = _model(env, "stale", 0.09, production=True)  # production changed while the candidate waited

    refused = _qmp("approve", candidate, "--approver", "alice")
    assert refused.exit_code == 1
    # A stand-in production model cannot be re-scored on the candidate's window: it is not shown to be beaten.
    assert "cannot be shown to beat production" in refused.output and better in refused.output
    assert refused.output.startswith("stale-approval check (fails)") and f"production {better}" in refused.output
    assert refused.output.rstrip("\n").splitlines()[-1].startswith("refused: approval by alice refused: ")
    assert Approvals(env).require(candidate).pending  # the CLI's check leaves the request open
    assert _events(env, candidate)[-1][0] == "approval_refused"

    forced = _qmp("approve", candidate, "--approver", "alice", "--comment", "regime change", "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.output.startswith("stale-approval check (forced)")
    assert "approved anyway (--force)" in " ".join(forced.output.split())  # the caption wraps to the table
    thread.join(timeout=60)
    assert "(forced)" in box.get("result", ""), box
    assert env.get_production_model("stale").model_id == candidate  # type: ignore[union-attr]
    approved = [e for e in env.history(model_id=candidate) if e.event == "approved"]
    assert len(approved) == 1 and "forced" in (approved[0].reason or "")


def test_a_blank_or_invalid_cli_answer_never_reaches_the_run(env: ModelRegistry) -> None:
    candidate = _model(env, "bad_answer", 0.05)
    thread, box = in_thread(lambda: ask_for(candidate, timeout_seconds=30))
    run = _waiting(candidate, box)
    blank = _qmp("approve", candidate, "--approver", "")
    assert blank.exit_code == 2 and "approver" in blank.output
    unknown = _qmp("approve", "bad_answer_v9.9.9", "--approver", "alice")
    assert unknown.exit_code != 0
    assert Approvals(env).require(candidate).pending
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run.id).state.is_paused()  # type: ignore[union-attr]
    assert _qmp("reject", candidate, "--approver", "alice").exit_code == 0
    thread.join(timeout=60)


def test_the_cleanup_flow_times_out_requests_nothing_is_running_for(env: ModelRegistry) -> None:
    from datetime import timedelta

    from flows.cleanup import CleanupParameters, cleanup

    candidate = _model(env, "swept", 0.05)
    Approvals(env).request(candidate, production_model_id=None, candidate_metrics={"ic_mean": 0.05},
                           production_metrics=None, reasons=["no production"], policy=MANUAL.model_dump(),
                           timeout=timedelta(seconds=1))
    time.sleep(1.5)
    cleanup(CleanupParameters(dry_run=True))
    assert Approvals(env).require(candidate).pending  # a dry run changes nothing
    cleanup(CleanupParameters())
    assert Approvals(env).require(candidate).state == ApprovalState.TIMED_OUT
    last = env.history(model_id=candidate)[-1]
    assert (last.event, last.actor) == ("approval_timed_out", "cleanup flow")
    assert env.get_model_info(candidate).status == ModelStatus.CANDIDATE
