"""`qmp retrain`: the retrain flow from the command line, printing metrics, decision and reasons."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

from deployments.cli.console import console, promotion_table
from flows.retrain import ApprovalSettings, RetrainResult, WorkflowSource, retrain
from registry.policy import PromotionPolicy
from tasks.core.errors import require_prefect_api
from tasks.core.rolling import WindowSettings


def run_retrain(
    config: Path,
    model_name: str,
    approval: Literal["auto", "manual"] = "auto",
    provider_uri: Path | None = None,
    approval_timeout: int = 86_400,
    windows: WindowSettings | None = None,
    force: bool = False,
) -> RetrainResult:
    """Run the retrain flow in this process (Prefect starts a local API if none is configured); the workflow,
    its data directory and the Prefect API are checked first, so bad input starts no run."""
    workflow = WorkflowSource(config_path=str(config), provider_uri=str(provider_uri) if provider_uri else None)
    workflow.load()
    require_prefect_api()
    return retrain(
        model_name=model_name,
        workflow=workflow,
        policy=PromotionPolicy(approval=approval),
        approval=ApprovalSettings(timeout_seconds=approval_timeout),
        windows=windows or WindowSettings(),
        force=force,
    )


def print_result(result: RetrainResult) -> None:
    if result.data_version:
        segments = ", ".join(f"{name} {a}..{b}" for name, (a, b) in result.segments.items())
        console.print(f"[bold]data version:[/] {result.data_version}  [bold]window:[/] {segments}")
    if result.comparison is None:  # the gate: nothing was trained
        console.print(result.message)
        return
    if result.production_unscored:
        console.print(f"[yellow]production could not be scored on this window:[/] {result.production_unscored}")
    console.print(promotion_table(result.comparison))
    for reason in result.comparison.reasons:
        console.print(f"  - {reason}")
    console.print(result.message)


def retrain_command(
    config: Annotated[Path, typer.Option("--config", exists=True, dir_okay=False, help="qrun-style workflow YAML.")],
    model_name: Annotated[str, typer.Option("--model-name", help="Registry name, e.g. lgbm_alpha158.")],
    approval: Annotated[str, typer.Option(help=(
        "auto: promote when better; manual: wait for a person's answer (Prefect UI Resume, or `qmp approve` / "
        "`qmp reject` from another shell). This command runs outside a deployment, so it waits in this process "
        "(a blocking pause); a deployment run suspends instead and holds no process while it waits."))] = "auto",
    provider_uri: Annotated[Path | None, typer.Option("--provider-uri", help="Qlib data directory (overrides the YAML).")] = None,
    approval_timeout: Annotated[int, typer.Option(help="Seconds to wait for a manual approval.")] = 86_400,
    rolling: Annotated[bool, typer.Option("--rolling", help="Roll the windows to the data calendar (else the YAML's segments).")] = False,
    train_days: Annotated[int, typer.Option(help="Rolling: trading days of training data.")] = WindowSettings().train_days,
    valid_days: Annotated[int, typer.Option(help="Rolling: trading days of validation data.")] = WindowSettings().valid_days,
    test_days: Annotated[int, typer.Option(help="Rolling: trading days evaluated.")] = WindowSettings().test_days,
    kind: Annotated[str, typer.Option(help="Rolling: sliding or expanding.")] = "sliding",
    anchor: Annotated[str, typer.Option(help="Rolling: last trading day the windows end at (latest or YYYY-MM-DD).")] = "latest",
    force: Annotated[bool, typer.Option("--force", help="Train even when the data has not changed.")] = False,
) -> None:
    """Train, evaluate, register and (maybe) promote one model, in this process.

    With --approval manual this process waits for the answer (a blocking pause, up to --approval-timeout):
    only a deployment run (`qmp serve`, or a worker) can suspend and free its process while it waits.
    """
    if approval not in ("auto", "manual"):
        raise typer.BadParameter("--approval must be auto or manual")
    try:
        windows = WindowSettings(
            mode="rolling" if rolling else "fixed", train_days=train_days, valid_days=valid_days,
            test_days=test_days, kind=kind, anchor=anchor if anchor == "latest" else date.fromisoformat(anchor),
        )  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(_first_error(exc)) from None
    if approval == "manual":
        console.print("[yellow]manual approval: this process waits; answer with the Prefect UI's Resume button or "
                      "`qmp approve MODEL_ID --approver NAME` / `qmp reject ...` from another shell[/]")
    print_result(run_retrain(config, model_name, approval, provider_uri, approval_timeout, windows, force))  # type: ignore[arg-type]


def _first_error(exc: ValueError) -> str:
    """A pydantic validation error as one line: the field and what is wrong with it."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc).splitlines()[0]
