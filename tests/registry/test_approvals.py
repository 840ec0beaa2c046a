"""Approval requests on SQLite and PostgreSQL: one decision per request, refusals, timeouts, supersession."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from registry import ApprovalClosedError, Approvals, ApprovalState, ModelNotFoundError, ModelRegistry
from registry.approvals import Claim, EvaluatedOn
from registry.store.tables import ModelStateRow, ModelVersionRow
from tests.registry.registry_helpers import metadata

POLICY = {"primary_metric": "ic_mean", "higher_is_better": True, "approval": "manual"}


def _candidate(registry: ModelRegistry, name: str = "appr", ic: float = 0.05) -> str:
    return registry.register_model({"ic": ic}, metadata(name, ic_mean=ic))


def _awaiting(registry: ModelRegistry, model_id: str) -> bool:
    query = (select(ModelStateRow.approval_requested_at).join(ModelVersionRow, ModelVersionRow.id == ModelStateRow.model_pk)
             .where(ModelVersionRow.model_id == model_id))
    with registry.db.engine.connect() as connection:
        return connection.execute(query).scalar_one() is not None


def _ask(approvals: Approvals, model_id: str, timeout: timedelta = timedelta(hours=1), **kw: Any):  # type: ignore[no-untyped-def]
    return approvals.request(
        model_id, production_model_id=None, candidate_metrics={"ic_mean": 0.05}, production_metrics=None,
        reasons=["there is no production model"], policy=POLICY, timeout=timeout, flow_run_id="run-1", **kw,
    )


def test_a_request_is_listed_recorded_and_decided_once(registry: ModelRegistry) -> None:
    approvals = Approvals(registry)
    model_id = _candidate(registry)
    request, superseded = _ask(approvals, model_id)
    assert request.state == ApprovalState.PENDING and superseded == []
    assert [a.model_id for a in approvals.pending()] == [model_id]
    assert _awaiting(registry, model_id)  # what keeps cleanup away from it
    again, _ = _ask(approvals, model_id)  # a resumed run asks again: same request, no second event
    assert again.requested_at == request.requested_at

    first = approvals.decide(model_id, "approve", approver="alice", comment="checked the backtest")
    second = approvals.decide(model_id, "reject", approver="bob", comment="too risky")
    assert first.won and first.approval.state == ApprovalState.APPROVED and first.approval.decided_by == "alice"
    assert not second.won and second.refusal is not None
    assert second.refusal.startswith(f"{model_id} was already approved by alice at ")
    assert approvals.pending() == []
    assert not _awaiting(registry, model_id)
    events = [(e.event, e.actor) for e in registry.history(model_id=model_id)]
    assert events == [("registered", events[0][1]), ("approval_requested", "retrain-flow"), ("approved", "alice"),
                      ("approval_refused", "bob")]


def test_an_answer_after_the_timeout_is_refused_and_recorded(registry: ModelRegistry) -> None:
    approvals = Approvals(registry)
    model_id = _candidate(registry)
    request, _ = _ask(approvals, model_id, timeout=timedelta(seconds=60))
    late = approvals.decide(model_id, "approve", approver="carol", now=request.expires_at + timedelta(seconds=1))
    assert not late.won and late.approval.state == ApprovalState.TIMED_OUT
    assert late.refusal is not None and "timed out" in late.refusal
    assert [e.event for e in registry.history(model_id=model_id)][-2:] == ["approval_timed_out", "approval_refused"]
    assert registry.get_model_info(model_id).status.value == "candidate"


def test_the_sweep_times_out_expired_requests_only(registry: ModelRegistry) -> None:
    approvals = Approvals(registry)
    old, fresh = _candidate(registry, "sweep_a"), _candidate(registry, "sweep_b")
    _ask(approvals, old, timeout=timedelta(seconds=10))
    _ask(approvals, fresh, timeout=timedelta(hours=1))
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert [a.model_id for a in approvals.pending(now=later)] == [fresh]
    expired = approvals.expire(now=later, actor="cleanup flow")
    assert [(a.model_id, a.state) for a in expired] == [(old, ApprovalState.TIMED_OUT)]
    assert approvals.expire(now=later) == []
    last = registry.history(model_id=old)[-1]
    assert (last.event, last.actor) == ("approval_timed_out", "cleanup flow")
    assert approvals.require(fresh).pending


def test_a_newer_candidate_supersedes_the_older_request(registry: ModelRegistry) -> None:
    approvals = Approvals(registry)
    older, newer = _candidate(registry, "sup", 0.04), _candidate(registry, "sup", 0.05)
    _ask(approvals, older)
    request, superseded = _ask(approvals, newer)
    assert [(a.model_id, a.state) for a in superseded] == [(older, ApprovalState.SUPERSEDED)]
    assert [a.model_id for a in approvals.pending("sup")] == [newer]
    late = approvals.decide(older, "approve", approver="dave")
    assert not late.won and late.refusal is not None and "superseded" in late.refusal and newer in late.refusal
    assert "approval_superseded" in [e.event for e in registry.history(model_id=older)]
    assert request.pending


def test_a_stale_refusal_closes_the_request_only_when_asked(registry: ModelRegistry) -> None:
    approvals = Approvals(registry)
    model_id = _candidate(registry)
    _ask(approvals, model_id)
    approvals.refuse(model_id, actor="erin", reason="stale: production is better now", close=False)
    assert approvals.require(model_id).pending
    closed = approvals.refuse(model_id, actor="erin", reason="stale: production is better now", close=True)
    assert closed.state == ApprovalState.REFUSED
    assert "refused" in (approvals.decide(model_id, "approve", approver="erin").refusal or "")


def test_answers_for_unknown_or_never_asked_models_are_one_clear_error(registry: ModelRegistry) -> None:
    approvals = Approvals(registry)
    model_id = _candidate(registry)
    with pytest.raises(ApprovalClosedError, match="no approval was requested"):
        approvals.require(model_id)
    with pytest.raises(ModelNotFoundError):
        approvals.require("nope_v1.0.0")
    with pytest.raises(ApprovalClosedError, match="no approval was requested"):
        approvals.decide(model_id, "approve", approver="x")


@pytest.mark.slow
def test_concurrent_answers_give_exactly_one_decision(registry: ModelRegistry, database_url: str, tmp_path: Path) -> None:
    """Eight answers released at once, each through its own registry (own connection pool)."""
    model_id = _candidate(registry)
    _ask(Approvals(registry), model_id)
    registries = [ModelRegistry(registry.registry_dir, database_url) for _ in range(8)]
    barrier = threading.Barrier(len(registries))

    def answer(i: int) -> Claim:
        barrier.wait()
        return Approvals(registries[i]).decide(model_id, "approve" if i % 2 else "reject", approver=f"person-{i}")

    try:
        with ThreadPoolExecutor(len(registries)) as pool:
            claims = list(pool.map(answer, range(len(registries))))
    finally:
        for reg in registries:
            reg.close()
    winners = [c for c in claims if c.won]
    assert len(winners) == 1
    winner = winners[0].approval.decided_by
    assert all(c.refusal and f"by {winner} at" in c.refusal for c in claims if not c.won)
    decided = [e for e in registry.history(model_id=model_id) if e.event in {"approved", "approval_rejected"}]
    assert [e.actor for e in decided] == [winner]


def test_the_stale_check_reruns_the_policy_only_when_production_changed(registry: ModelRegistry) -> None:
    """Stand-in models have no Qlib recorder: a changed production cannot be re-scored on the candidate's
    window, and its recorded metrics (measured on other days) never decide. Real models: tests/qlib."""
    from registry.settings import load_settings
    from tasks.core.approvals.requests import check_still_better, pending_approvals

    approvals = Approvals(registry)
    first = _candidate(registry, "stale_chk", 0.01)
    registry.set_production_model(first, reason="baseline")
    candidate = _candidate(registry, "stale_chk", 0.05)
    approvals.request(candidate, production_model_id=first, candidate_metrics={"ic_mean": 0.05},
                      production_metrics={"ic_mean": 0.01}, reasons=["better"], policy=POLICY, timeout=timedelta(hours=1),
                      evaluated_on=EvaluatedOn(segment="valid", provider_uri="/data/qlib"))
    assert approvals.require(candidate).evaluated_on == EvaluatedOn(segment="valid", provider_uri="/data/qlib")
    unchanged = check_still_better(approvals.require(candidate), registry, settings=load_settings())
    assert unchanged.ok and not unchanged.production_changed

    worse = _candidate(registry, "stale_chk", 0.02)
    registry.set_production_model(worse, reason="someone promoted another")
    unscored = check_still_better(approvals.require(candidate), registry, settings=load_settings())
    assert unscored.production_changed and not unscored.ok and unscored.current_production_id == worse
    assert unscored.verdict == "cannot be shown to beat production"
    assert "cannot be rebuilt" in (unscored.production_unscored or "") and candidate in unscored.summary()
    assert "could not be scored on the candidate's window its 'valid' segment" in unscored.summary()

    registry.set_model_status(worse, "archived", force=True)  # production retired: nothing left to beat
    assert registry.get_production_model("stale_chk") is None
    gone = check_still_better(approvals.require(candidate), registry, settings=load_settings())
    assert gone.ok and "there is no production model" in gone.summary()

    [listed] = pending_approvals(registry, model_name="stale_chk")
    assert listed.model_id == candidate and listed.age_seconds >= 0
    assert [(r.metric, r.candidate, r.production) for r in listed.comparison] == [("ic_mean", 0.05, 0.01)]
