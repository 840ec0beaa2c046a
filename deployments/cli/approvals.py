"""`qmp approvals list`, `qmp approve`, `qmp reject`: answer a pending approval from the command line.

Listing reads the registry only. Answering imports Prefect (lazily, inside the commands): the answer is
checked against the waiting run's form, decided exactly once in the registry, then the run is resumed
with the same input model the Prefect UI's Resume form produces.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from deployments.cli.console import console, err_console, fmt
from registry import Approval, Approvals, ModelRegistry
from registry.policy import PromotionPolicy, metric_difference

if TYPE_CHECKING:
    from tasks.core.approvals.requests import StaleCheck

approvals_app = typer.Typer(help="Candidates awaiting a person's approval.", no_args_is_help=True)

Approver = Annotated[str, typer.Option("--approver", help="Your name; recorded in the registry history.")]
Comment = Annotated[str, typer.Option("--comment", help="Why; recorded in the registry history.")]


def _duration(delta: timedelta) -> str:
    seconds = int(max(delta.total_seconds(), 0))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m" if hours else f"{rest // 60}m {rest % 60}s"


@approvals_app.command("list")
def list_approvals(
    name: Annotated[str | None, typer.Option("--name", help="Only this model name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Candidates awaiting approval, oldest first, with their comparison with production and their age."""
    from tasks.core.approvals.requests import pending_approvals

    now = datetime.now(UTC)
    with ModelRegistry.from_settings() as registry:
        pending = pending_approvals(registry, model_name=name, now=now)
    if as_json:
        console.print_json(json.dumps([p.model_dump(mode="json") for p in pending]))
        return
    if not pending:
        console.print("no candidate is awaiting approval")
        return
    for p in pending:
        table = Table(title=f"{p.model_id} vs {p.production_model_id or 'no production model'}", title_justify="left")
        for column in ("metric", "candidate", "production", "difference"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for row in p.comparison:
            diff = row.difference
            table.add_row(row.metric, fmt(row.candidate), fmt(row.production), "-" if diff is None else f"{diff:+.4f}")
        console.print(table)
        console.print(f"  asked {p.requested_at:%Y-%m-%d %H:%M} UTC ({_duration(now - p.requested_at)} ago), "
                      f"expires in {_duration(p.expires_at - now)}; flow run {p.flow_run_id or '-'}")
        for reason in p.reasons:
            console.print(f"  - {reason}")


def _metric_order(names: set[str], policy: PromotionPolicy) -> list[str]:
    """The policy's primary metric, then its guardrails, then the rest by name."""
    key = [policy.primary_metric, *(rail.metric for rail in policy.guardrails)]
    first = list(dict.fromkeys(name for name in key if name in names))
    return first + sorted(names - set(first))


def stale_check_table(check: StaleCheck, approval: Approval, mark: str) -> Table:
    """The stale-approval check per metric: the candidate against today's production on the candidate's window
    when production changed, else against production as the request compared them; the verdict in the caption."""
    policy = PromotionPolicy.model_validate(approval.policy)
    if check.production_changed:
        candidate = check.candidate_metrics_on_window or approval.candidate_metrics
        production = check.production_metrics_on_window
        versus = f"production {check.current_production_id or '(none)'}"
        change = f"production changed: {approval.production_model_id or 'none'} -> {check.current_production_id or 'none'}"
        change += f"; both scored on {check.window}" if check.window else ""
    else:
        candidate, production = approval.candidate_metrics, approval.production_metrics or {}
        versus = f"production {check.current_production_id or '(none)'} as requested"
        change = "production unchanged since the request"
    if check.ok:
        verdict = "the candidate still beats production" if check.production_changed else "the request's comparison stands"
    else:
        verdict = f"the candidate {check.verdict}" + ("; approved anyway (--force)" if mark == "forced" else "")
    table = Table(title=f"stale-approval check ({mark})", title_justify="left", caption=f"{change}; {verdict}",
                  caption_justify="left")
    for column in ("metric", f"candidate {approval.model_id}", versus, "difference"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    key = {policy.primary_metric, *(rail.metric for rail in policy.guardrails)}
    for name in _metric_order(set(candidate) | set(production), policy):
        new, old = candidate.get(name), production.get(name)
        diff = "-" if new is None or old is None else f"{metric_difference(new, old):+.4f}"
        table.add_row(f"[bold]{name}[/]" if name in key else name, fmt(new), fmt(old), diff)
    return table


def _answer(model_id: str, decision: Literal["approve", "reject"], approver: str, comment: str, force: bool) -> None:
    from pydantic import ValidationError

    from tasks.core.errors import require_prefect_api

    require_prefect_api()  # a Prefect server that is down is one line, before anything is decided
    from flows.approval import ApprovalInput, NotResumableError, check_resumable, resume_with_answer
    from registry.settings import load_settings
    from tasks.core.approvals.requests import take_answer

    try:
        answer = ApprovalInput(decision=decision, approver=approver, comment=comment, force=force)
    except ValidationError as exc:
        first = exc.errors()[0]
        err_console.print(f"[red]error:[/] invalid answer: {first['loc'][0]}: {first['msg']}", highlight=False)
        raise typer.Exit(2) from None
    with ModelRegistry.from_settings() as registry:
        approval = Approvals(registry).require(model_id)
        if approval.pending and approval.expires_at > datetime.now(UTC):  # a late answer is refused and recorded below
            try:
                check_resumable(approval, answer)
            except NotResumableError as exc:
                err_console.print(f"[red]refused:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
        outcome = take_answer(registry, model_id, decision, approver=approver, comment=comment, force=force,
                              close_on_stale=False, settings=load_settings())
    if outcome.check is not None and (outcome.decided or not outcome.check.ok):  # else the refusal says why
        mark = "ok" if outcome.check.ok else ("forced" if force else "fails")
        console.print(stale_check_table(outcome.check, outcome.approval, mark))
    if not outcome.decided:
        err_console.print(f"[red]refused:[/] {outcome.refusal}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    try:
        resumed = resume_with_answer(outcome.approval, answer)
    except NotResumableError as exc:
        err_console.print(f"[red]error:[/] decided, but {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    verb = "approved" if decision == "approve" else "rejected"
    console.print(f"{model_id} {verb} by {approver}; flow run {outcome.approval.flow_run_id} {resumed}: "
                  + ("it promotes the model" if decision == "approve" else "the model stays a candidate"))


def approve_command(
    model_id: Annotated[str, typer.Argument(help="The candidate's model id, e.g. lgbm_alpha158_v1.4.0.")],
    approver: Approver,
    comment: Comment = "",
    force: Annotated[bool, typer.Option("--force", help="Approve even if production changed and the candidate no "
                                        "longer beats it, or the new production model cannot be scored on the "
                                        "candidate's window (recorded as forced).")] = False,
) -> None:
    """Approve a pending candidate: checked against today's production, decided once, its run resumed to promote it.

    If production changed while the candidate waited, the new production model is first re-scored on the
    candidate's evaluation window (as the retrain flow's champion/challenger does) and the check is printed.
    """
    _answer(model_id, "approve", approver, comment, force)


def reject_command(
    model_id: Annotated[str, typer.Argument(help="The candidate's model id.")],
    approver: Approver,
    comment: Comment = "",
) -> None:
    """Reject a pending candidate: decided once, its run resumed; the model stays a candidate."""
    _answer(model_id, "reject", approver, comment, False)
