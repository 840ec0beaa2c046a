"""`qmp rolling`: replay a workflow over history (Qlib's Rolling), every window a registry version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deployments.cli.console import console, err_console

if TYPE_CHECKING:
    from tasks.core.replay.result import ReplayRecord


def rolling_command(
    config: Annotated[Path, typer.Option("--config", dir_okay=False, help=(
        "qrun-style workflow YAML; examples/NAME.yaml names a shipped example when no such file is here."))],
    model_name: Annotated[str, typer.Option("--model-name", help="Registry name the replay belongs to.")],
    step: Annotated[int, typer.Option(min=1, help="Trading days per test window (Qlib Rolling's step).")] = 20,
    kind: Annotated[str, typer.Option(help="expanding (Qlib's ROLL_EX, its default) or sliding (ROLL_SD).")] = "expanding",
    horizon: Annotated[int | None, typer.Option(min=1, help="Rewrite the label for this horizon, as Qlib's Rolling does.")] = 20,
    train_start: Annotated[str | None, typer.Option(help="Override the train segment's start (YYYY-MM-DD).")] = None,
    test_end: Annotated[str | None, typer.Option(help="Override the test segment's end (YYYY-MM-DD).")] = None,
    processors: Annotated[str, typer.Option(help="refit: per window on its train span; fixed: as Qlib's Rolling.")] = "refit",
    workers: Annotated[int, typer.Option(min=1, help="Windows trained at once, each in its own process.")] = 1,
    dask_address: Annotated[str | None, typer.Option(help="tcp://host:8786 of a Dask scheduler, or 'local'.")] = None,
    provider_uri: Annotated[Path | None, typer.Option("--provider-uri", help="Qlib data directory (overrides the YAML).")] = None,
) -> None:
    """Retrain every window of the test period, evaluate the combined predictions once."""
    from pydantic import ValidationError

    from tasks.core.data.version import DataVersionError
    from tasks.core.qlib.workflow_config import WorkflowConfigError

    if kind not in ("expanding", "sliding"):
        raise typer.BadParameter("--kind must be expanding or sliding")
    if processors not in ("refit", "fixed"):
        raise typer.BadParameter("--processors must be refit or fixed")
    try:
        from flows.retrain import WorkflowSource
        from flows.rolling import ReplayRunner, rolling
        from tasks.core.replay.plan import ReplaySpec

        spec = ReplaySpec(step=step, kind=kind, horizon=horizon, train_start=train_start,  # type: ignore[arg-type]
                          test_end=test_end, processors=processors)  # type: ignore[arg-type]
        runner = ReplayRunner(workers=workers, dask_address=dask_address)
        source = WorkflowSource(config_path=str(config), provider_uri=str(provider_uri) if provider_uri else None)
    except ValidationError as exc:
        err_console.print(f"[red]error:[/] {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(1) from None
    from deployments.cli.prefect_api import one_prefect_api
    from deployments.cli.preflight import hint_local_server
    from tasks.core.errors import require_prefect_api

    try:
        source.load()  # the workflow and its data directory, before any server starts
        require_prefect_api()
        hint_local_server()
        with one_prefect_api():
            record = rolling(model_name=model_name, workflow=source, replay=spec, runner=runner)
    except (WorkflowConfigError, DataVersionError) as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print_record(record)


def print_record(record: ReplayRecord) -> None:
    """The per-window table, the combined metrics and where the record is."""
    table = Table(title=f"Replay {record.replay_id} of {record.model_name} ({record.spec.processors} processors)")
    rows = record.table()
    for column in rows[0]:
        table.add_column(column, justify="right" if column in ("window", "ic", "rank_ic", "days") else "left")
    for row in rows[:-1]:
        table.add_row(*(str(v) for v in row.values()))
    table.add_section()
    table.add_row(*(f"[bold]{v}[/]" for v in rows[-1].values()))
    console.print(table)
    c = record.combined
    console.print(
        f"combined: ic {c.get('ic_mean', float('nan')):.4f}, icir {c.get('icir', float('nan')):.3f}, "
        f"rank ic {c.get('rank_ic', float('nan')):.4f}, annualized return {c.get('annualized_return', float('nan')):.4f}, "
        f"information ratio {c.get('information_ratio', float('nan')):.3f}, max drawdown {c.get('max_drawdown', float('nan')):.4f}",
        highlight=False,
    )
    memory = ", ".join(f"{k.replace('_', ' ')} {v:.0f} MiB" for k, v in record.peak_mib.items())
    console.print(f"peak memory: {memory}", highlight=False)
    console.print(f"{record.trained_windows} windows trained, {record.reused_windows} reused; "
                  f"versions of {record.replay_name}; record {record.record_path}", highlight=False)
