"""The Resume form, read back through the JSON schema the Prefect UI renders and the server validates against."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prefect import flow, pause_flow_run
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run

from flows.approval import ApprovalInput, approval_form
from tests.threads import in_thread, paused_run

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]

TEXT = "### m_v1.1.0 vs m_v1.0.0\n\n| metric | candidate | production |"


@flow(name="approval-form-probe")
def ask(tag: str) -> dict[str, Any]:
    answer = pause_flow_run(wait_for_input=approval_form(TEXT), timeout=120, poll_interval=1, key=f"approve-{tag}")
    return answer.model_dump()


def _start(tag: str) -> tuple[threading.Thread, dict[str, Any]]:
    return in_thread(lambda: ask(tag))


def _paused(tag: str, box: dict[str, Any]) -> FlowRun:
    return paused_run({"tag": tag}, box, 60, "probe flow")


def test_the_decision_is_a_required_choice_without_default_and_a_blank_answer_is_refused() -> None:
    thread, box = _start("schema")
    run = _paused("schema", box)
    keyset = run.state.state_details.run_input_keyset  # type: ignore[union-attr]
    assert keyset is not None
    with get_client(sync_client=True) as client:
        schema = client.read_flow_run_input(run.id, keyset["schema"])
        description = client.read_flow_run_input(run.id, keyset["description"])
    import json

    schema = json.loads(schema)
    decision = schema["properties"]["decision"]
    assert "decision" in schema["required"] and "approver" in schema["required"]
    assert "default" not in decision
    assert decision["enum"] == ["approve", "reject"]
    assert "approve" in decision["description"] and "reject" in decision["description"]
    assert "approve" not in schema["properties"]  # the old pre-set toggle is gone
    assert json.loads(description) == TEXT

    # What the UI would send when nobody chose: the server validates against the schema and refuses.
    with pytest.raises(RuntimeError, match="decision"):
        resume_flow_run(run.id, run_input={"approver": "alice", "comment": "rejected: drawdown too deep"})
    with pytest.raises(RuntimeError, match=r"decision|enum|maybe"):
        resume_flow_run(run.id, run_input={"decision": "maybe", "approver": "alice"})
    resume_flow_run(run.id, run_input={"decision": "reject", "approver": "alice", "comment": "drawdown too deep"})
    thread.join(timeout=60)
    assert box.get("result") == {"decision": "reject", "approver": "alice", "comment": "drawdown too deep", "force": False}


def test_the_python_model_refuses_an_answer_without_a_decision() -> None:
    with pytest.raises(ValueError, match="decision"):
        ApprovalInput(approver="alice")  # type: ignore[call-arg]
