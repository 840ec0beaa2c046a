"""`qmp retrain`: the retrain flow from the command line, printing the decision, the metrics and the outcome.

Options are checked (RetrainOptions) before Prefect or Qlib is imported; the flow module is imported only
when a run starts, so `qmp --help` and the registry commands stay fast.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from deployments.cli.console import console, promotion_table
from flows.options import RetrainOptions, WorkflowSource, load_policy_file, parse_guardrail
from tasks.core.errors import PipelineInputError
from tasks.core.windows.settings import WindowSettings

if TYPE_CHECKING:
    from flows.retrain import RetrainResult


class ApprovalMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    ALWAYS = "always"


def run_retrain(
    config: Path, model_name: str, options: RetrainOptions | None = None, provider_uri: Path | None = None
) -> RetrainResult | str:
    """Run the retrain flow in this process (Prefect starts a local API if none is configured); the workflow,
    its data directory, the windows and the Prefect API are checked first, so bad input starts no run, and a
    run the no-new-data gate would skip is answered (the message) without starting one."""
    from deployments.cli.preflight import hint_local_server, retrain_no_op
    from tasks.core.errors import require_prefect_api

    options = options or RetrainOptions()
    workflow = WorkflowSource(config_path=str(config), provider_uri=str(provider_uri) if provider_uri else None)
    skipped = retrain_no_op(workflow, model_name, options)
    if skipped is not None:
        return skipped
    require_prefect_api()
    hint_local_server()
    from flows.retrain import retrain

    return retrain(model_name=model_name, workflow=workflow, **options.flow_parameters())


def build_options(
    *, policy_file: Path | None = None, approval: str | None = None, approval_timeout: int | None = None,
    primary_metric: str | None = None, higher_is_better: bool | None = None, min_improvement: float | None = None,
    min_relative_improvement: float | None = None, guardrails: list[str] | None = None,
) -> RetrainOptions:
    """The policy file's fields, overridden by the flags given; raises ValueError naming what is wrong."""
    policy: dict[str, Any] = load_policy_file(policy_file) if policy_file else {}
    flags = {"primary_metric": primary_metric, "higher_is_better": higher_is_better, "approval": approval,
             "min_improvement": min_improvement, "min_relative_improvement": min_relative_improvement}
    policy.update({key: value for key, value in flags.items() if value is not None})
    if guardrails:
        parsed = [parse_guardrail(text).model_dump(exclude_none=True) for text in guardrails]
        policy["guardrails"] = [*(policy.get("guardrails") or []), *parsed]
    raw: dict[str, Any] = {"policy": policy}
    if approval_timeout is not None:
        raw["approval"] = {"timeout_seconds": approval_timeout}
    return RetrainOptions.model_validate(raw)


def checked_options(
    *, rolling: bool, train_days: int, valid_days: int, test_days: int, kind: str, anchor: str, force: bool,
    **policy_flags: Any,
) -> RetrainOptions:
    """`build_options` with the windows and --force; a bad option is a one-line PipelineInputError."""
    try:
        options = build_options(**policy_flags)
        windows = WindowSettings(
            mode="rolling" if rolling else "fixed", train_days=train_days, valid_days=valid_days,
            test_days=test_days, kind=kind, anchor=anchor if anchor == "latest" else date.fromisoformat(anchor),
        )  # type: ignore[arg-type]
        return options.model_copy(update={"windows": windows, "force": force})
    except ValidationError as exc:
        raise PipelineInputError(_validation_message(exc)) from None
    except ValueError as exc:
        raise PipelineInputError(str(exc)) from None


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "options"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid retrain option {where}: {first['msg']}{more}"


OUTCOME_LINES = {
    "promoted": "[green]promoted[/] by {by}: {model} is production",
    "approved": "[green]approved and promoted[/] by {by}: {model} is production",
    "rejected": "[yellow]rejected[/] by {by}: {model} stays {status}",
    "timed_out": "[yellow]approval timed out[/]: nobody answered, {model} stays {status}",
    "kept": "[yellow]kept[/]: {model} stays {status}, production unchanged",
}


def print_result(result: RetrainResult | str) -> None:
    """Decision and reasons, the metrics against the production model it was compared with, then the outcome
    (or the no-op's message)."""
    if isinstance(result, str):
        console.print(result, highlight=False, soft_wrap=True)
        return
    if result.data_version:
        segments = ", ".join(f"{name} {a}..{b}" for name, (a, b) in result.segments.items())
        console.print(f"[bold]data version:[/] {result.data_version}  [bold]window:[/] {segments}")
    if result.comparison is None:  # the gate: nothing was trained
        console.print(result.message)
        return
    if result.production_unscored:
        console.print(f"[yellow]production could not be scored on this window:[/] {result.production_unscored}")
    console.print(f"[bold]policy decision:[/] {result.decision.value if result.decision else '-'}")
    for reason in result.reasons:
        console.print(f"  - {reason}", highlight=False)
    console.print(promotion_table(result.comparison))
    line = OUTCOME_LINES[result.outcome.value].format(by=result.decided_by, model=result.model_id, status=result.status)
    console.print(f"[bold]outcome:[/] {line}")


def retrain_command(
    config: Annotated[Path, typer.Option("--config", dir_okay=False, help=(
        "qrun-style workflow YAML; examples/NAME.yaml names a shipped example when no such file is here."))],
    model_name: Annotated[str, typer.Option("--model-name", help="Registry name, e.g. lgbm_alpha158.")],
    approval: Annotated[ApprovalMode | None, typer.Option(
        help="auto: promote when the candidate beats production. manual: pause for a person only when it beats "
             "production (otherwise keep it without asking). always: pause for every candidate. A person answers "
             "with the Prefect UI's Resume button or `qmp approve` / `qmp reject` from another shell. This command "
             "runs outside a deployment, so it waits in this process (a blocking pause); a deployment run suspends "
             "instead and holds no process while it waits. [default: auto]",
    )] = None,
    provider_uri: Annotated[Path | None, typer.Option("--provider-uri", help="Qlib data directory (overrides the YAML).")] = None,
    approval_timeout: Annotated[int | None, typer.Option(
        help="Seconds to wait for an approval; then the model stays a candidate. [default: 86400]")] = None,
    policy_file: Annotated[Path | None, typer.Option(
        "--policy", exists=True, dir_okay=False,
        help="YAML of promotion policy fields (primary_metric, min_improvement, guardrails, ...); flags override it.",
    )] = None,
    primary_metric: Annotated[str | None, typer.Option(help="Metric that decides which model is better. [default: ic_mean]")] = None,
    higher_is_better: Annotated[bool | None, typer.Option(
        "--higher-is-better/--lower-is-better", help="Direction of the primary metric. [default: higher]")] = None,
    min_improvement: Annotated[float | None, typer.Option(help="Minimum absolute gain over production. [default: 0]")] = None,
    min_relative_improvement: Annotated[float | None, typer.Option(
        help="Minimum gain as a fraction of |production|, e.g. 0.05. [default: 0]")] = None,
    guardrail: Annotated[list[str] | None, typer.Option(
        help="Bound on another metric, METRIC>=X or METRIC<=X, e.g. 'max_drawdown>=-0.15' (repeatable).")] = None,
    rolling: Annotated[bool, typer.Option("--rolling", help="Roll the windows to the data calendar (else the YAML's segments).")] = False,
    train_days: Annotated[int, typer.Option(help="Rolling: trading days of training data.")] = WindowSettings().train_days,
    valid_days: Annotated[int, typer.Option(help="Rolling: trading days of validation data.")] = WindowSettings().valid_days,
    test_days: Annotated[int, typer.Option(help="Rolling: trading days evaluated.")] = WindowSettings().test_days,
    kind: Annotated[str, typer.Option(help="Rolling: sliding or expanding.")] = "sliding",
    anchor: Annotated[str, typer.Option(help="Rolling: last trading day the windows end at (latest or YYYY-MM-DD).")] = "latest",
    force: Annotated[bool, typer.Option("--force", help="Train even when the data has not changed.")] = False,
) -> None:
    """Train, evaluate, register and (maybe) promote one model, in this process.

    With --approval manual or always this process waits for the answer (a blocking pause, up to
    --approval-timeout): only a deployment run (`qmp serve`, or a worker) can suspend and free its process.
    """
    options = checked_options(
        policy_file=policy_file, approval=approval.value if approval else None, approval_timeout=approval_timeout,
        primary_metric=primary_metric, higher_is_better=higher_is_better, min_improvement=min_improvement,
        min_relative_improvement=min_relative_improvement, guardrails=guardrail,
        rolling=rolling, train_days=train_days, valid_days=valid_days, test_days=test_days, kind=kind, anchor=anchor,
        force=force,
    )
    if options.policy.approval != "auto":
        console.print("[yellow]approval: this process waits; answer with the Prefect UI's Resume button or "
                      "`qmp approve MODEL_ID --approver NAME` / `qmp reject ...` from another shell[/]")
    print_result(run_retrain(config, model_name, options, provider_uri))
