"""`qmp rolling`: replay a workflow over history (Qlib's Rolling), every window a registry version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deployments.cli.console import console, err_console

if TYPE_CHECKING:
    from flows.retrain import WorkflowSource
    from flows.rolling import ReplayRunner
    from tasks.core.replay.drift_plan import DriftReplaySpec
    from tasks.core.replay.drift_result import DriftComparison
    from tasks.core.replay.plan import ReplaySpec
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
    trigger: Annotated[str, typer.Option(help=(
        "step: retrain every --step days; drift: retrain only when the drift rule fires, beside the step replay."))] = "step",
    window: Annotated[int | None, typer.Option(help="drift: live days the rule's mean IC spans (default 20).")] = None,
    z: Annotated[float | None, typer.Option(help="drift: standard errors below expectation that count as drift (default 2).")] = None,
    floor: Annotated[float | None, typer.Option(help="drift: a mean live IC below this is drift.")] = None,
    min_days: Annotated[int | None, typer.Option(help="drift: live days before any verdict (default 10, at most --window).")] = None,
    test_days: Annotated[int | None, typer.Option(help="drift: trading days each retrain is evaluated on (default 20).")] = None,
) -> None:
    """Retrain every window of the test period, evaluate the combined predictions once; with --trigger drift,
    retrain only when the drift rule fires and compare with the fixed-step replay of the same period."""
    from pydantic import ValidationError

    if kind not in ("expanding", "sliding"):
        raise typer.BadParameter("--kind must be expanding or sliding")
    if processors not in ("refit", "fixed"):
        raise typer.BadParameter("--processors must be refit or fixed")
    try:
        drift = drift_spec(trigger, window, z, floor, min_days, test_days)
        from flows.retrain import WorkflowSource
        from flows.rolling import ReplayRunner
        from tasks.core.replay.plan import ReplaySpec

        spec = ReplaySpec(step=step, kind=kind, horizon=horizon, train_start=train_start,  # type: ignore[arg-type]
                          test_end=test_end, processors=processors)  # type: ignore[arg-type]
        runner = ReplayRunner(workers=workers, dask_address=dask_address)
        source = WorkflowSource(config_path=str(config), provider_uri=str(provider_uri) if provider_uri else None)
    except ValidationError as exc:
        err_console.print(f"[red]error:[/] {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(1) from None
    run_replay(model_name, source, spec, runner, drift)


def drift_spec(trigger: str, window: int | None, z: float | None, floor: float | None, min_days: int | None,
               test_days: int | None) -> DriftReplaySpec | None:
    """What --trigger drift replays; None for --trigger step. Bad values are refused here, before anything runs."""
    from registry.drift import DEFAULT_RULE, make_rule
    from registry.errors import InvalidArgumentError
    from tasks.core.replay.drift_plan import DriftReplaySpec

    if trigger not in ("step", "drift"):
        raise InvalidArgumentError(f"--trigger must be step or drift, got {trigger!r}")
    if trigger == "step":
        if any(v is not None for v in (window, z, floor, min_days, test_days)):
            raise InvalidArgumentError("--window, --z, --floor, --min-days and --test-days apply to --trigger drift")
        return None
    if min_days is None and window is not None:
        min_days = max(1, min(DEFAULT_RULE.min_days, window))  # a short window needs no more days than it spans
    rule = make_rule(window=window, z=z, floor=floor, min_days=min_days)
    return DriftReplaySpec(rule=rule, **({} if test_days is None else {"test_days": test_days}))


def run_replay(model_name: str, source: WorkflowSource, spec: ReplaySpec, runner: ReplayRunner,
               drift: DriftReplaySpec | None) -> None:
    """Run the step replay (or the drift replay beside it) on a Prefect API and print what it did."""
    from deployments.cli.prefect_api import one_prefect_api
    from deployments.cli.preflight import hint_local_server
    from tasks.core.data.version import DataVersionError
    from tasks.core.errors import require_prefect_api
    from tasks.core.qlib.workflow_config import WorkflowConfigError

    try:
        source.load()  # the workflow and its data directory, before any server starts
        require_prefect_api()
        hint_local_server()
        with one_prefect_api():
            if drift is None:
                from flows.rolling import rolling

                print_record(rolling(model_name=model_name, workflow=source, replay=spec, runner=runner))
                return
            from flows.drift_rolling import drift_rolling

            comparison = drift_rolling(model_name=model_name, workflow=source, replay=spec, drift=drift, runner=runner)
    except (WorkflowConfigError, DataVersionError) as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print_comparison(comparison)


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


def print_comparison(comparison: DriftComparison) -> None:
    """The drift replay's models (why each retrain happened), then both policies side by side."""
    drift = comparison.drift
    table = Table(title=f"Drift replay {drift.replay_id} of {drift.model_name}: {drift.drift.rule.describe()}")
    for column in ("window", "model_id", "evaluated on", "expectation", "live", "live ic", "ended by"):
        table.add_column(column, justify="right" if column in ("window", "expectation", "live ic") else "left")
    for w in drift.windows:
        expected = f"{w.expectation.mean:.4f}" if w.expectation else "-"
        table.add_row(str(w.index), w.model_id, " .. ".join(w.segments["test"]), expected, " .. ".join(w.live),
                      f"{w.live_ic:.4f}", w.drift_reason or "the period's end")
    console.print(table)
    rows = comparison.rows()
    policies = Table(title=f"Same period, label look-ahead {drift.horizon} days")
    for column in rows[0]:
        policies.add_column(column, justify="left" if column in ("policy", "period") else "right")
    for row in rows:
        policies.add_row(*(str(v) for v in row.values()))
    console.print(policies)
    console.print(f"versions of {drift.replay_name}; record {drift.record_path}; "
                  f"fixed-step replay {comparison.fixed.replay_id}: {comparison.fixed.record_path}", highlight=False)
