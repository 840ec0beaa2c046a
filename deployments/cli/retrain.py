"""`qmp retrain`: the retrain flow from the command line, printing metrics, decision and reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from deployments.cli.console import console, promotion_table
from flows.retrain import ApprovalSettings, RetrainResult, WorkflowSource, retrain
from registry.policy import PromotionPolicy
from tasks.core.errors import require_prefect_api


def run_retrain(
    config: Path,
    model_name: str,
    approval: Literal["auto", "manual"] = "auto",
    provider_uri: Path | None = None,
    approval_timeout: int = 86_400,
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
    )


def print_result(result: RetrainResult) -> None:
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
) -> None:
    """Train, evaluate, register and (maybe) promote one model, in this process.

    With --approval manual this process waits for the answer (a blocking pause, up to --approval-timeout):
    only a deployment run (`qmp serve`, or a worker) can suspend and free its process while it waits.
    """
    if approval not in ("auto", "manual"):
        raise typer.BadParameter("--approval must be auto or manual")
    if approval == "manual":
        console.print("[yellow]manual approval: this process waits; answer with the Prefect UI's Resume button or "
                      "`qmp approve MODEL_ID --approver NAME` / `qmp reject ...` from another shell[/]")
    print_result(run_retrain(config, model_name, approval, provider_uri, approval_timeout))  # type: ignore[arg-type]
