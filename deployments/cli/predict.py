"""`qmp predict` (the predict flow in this process) and `qmp signals` (stored scores, without Prefect or Qlib)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deployments.cli.console import console, err_console

if TYPE_CHECKING:
    from registry.predictions import Prediction


class SignalFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


def predict_command(
    model_name: Annotated[str | None, typer.Option("--model-name", help="Default: every name with a production model.")] = None,
    from_date: Annotated[str | None, typer.Option("--from", help="First day YYYY-MM-DD (default: after the last stored one).")] = None,
    to_date: Annotated[str | None, typer.Option("--to", help="Last day YYYY-MM-DD (default: the data calendar's last day).")] = None,
    recompute: Annotated[bool, typer.Option("--recompute", help="Replace the stored scores of --from..--to.")] = False,
    top_k: Annotated[int, typer.Option("--top", min=1, max=1000, help="Instruments in the signal artifact.")] = 20,
    provider_uri: Annotated[Path | None, typer.Option("--provider-uri", help="Qlib data directory (default: QMP_PROVIDER_URI).")] = None,
) -> None:
    """Score the production model of each name on the new trading days and store the signals."""
    start, end = _day(from_date, "--from"), _day(to_date, "--to")
    if recompute and (start is None or end is None):
        raise typer.BadParameter("--recompute needs both --from and --to")
    from deployments.cli.preflight import hint_local_server, predict_no_op
    from tasks.core.errors import require_prefect_api

    nothing = predict_no_op(model_name, provider_uri, explicit_range=start is not None or end is not None)
    if nothing is not None:
        console.print(nothing, highlight=False, soft_wrap=True)
        return
    require_prefect_api()
    hint_local_server()
    from flows.predict import predict  # Prefect and Qlib load only for a run

    state = predict(model_name=model_name, from_date=start, to_date=end, recompute=recompute, top_k=top_k,
                    provider_uri=str(provider_uri) if provider_uri else None, return_state=True)
    result = state.result(raise_on_failure=False)
    results = getattr(result, "results", None)
    if results is None:  # the flow itself failed before reaching the names (e.g. bad parameters)
        err_console.print(f"[red]error:[/] {state.message}", highlight=False, soft_wrap=True)
        sys.exit(1)
    if not results:
        console.print(result.message)
    for item in results:
        if item.error:
            err_console.print(f"[red]error:[/] {item.message}", highlight=False, soft_wrap=True)
        else:
            console.print(item.message, highlight=False, soft_wrap=True)
    for live in getattr(result, "monitoring", []):
        _print_live(live)
    if state.is_failed():
        sys.exit(1)


def _print_live(live: object) -> None:
    """The live step's line and the drift verdict of one name (`qmp monitor NAME` has the whole report)."""
    message, drift = getattr(live, "message", ""), getattr(live, "drift", None)
    if getattr(live, "error", False):
        err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        return
    console.print(message, highlight=False, soft_wrap=True)
    if drift is not None:
        new = " (new drift episode: qmp.model.drift emitted)" if getattr(live, "new_drift_episode", False) else ""
        console.print(f"{drift.model_name}: drift verdict {drift.verdict.value}{new}: {'; '.join(drift.reasons)}",
                      highlight=False, soft_wrap=True)


def signals_command(
    model_name: Annotated[str, typer.Argument(help="Registry name, e.g. lgbm_alpha158.")],
    on: Annotated[str | None, typer.Option("--date", help="Trading day YYYY-MM-DD (default: the last stored day).")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many instruments, best score first.")] = 50,
    fmt: Annotated[SignalFormat, typer.Option("--format", help="table, csv, json or parquet.")] = SignalFormat.table,
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file (parquet needs one).")] = None,
) -> None:
    """The stored signal of a model name on one trading day."""
    from registry import ModelRegistry

    day = _day(on, "--date")
    with ModelRegistry.from_settings() as registry:
        rows = registry.predictions(model_name, day)
    if not rows:
        when = f"on {day}" if day else "at all"
        err_console.print(f"[red]error:[/] no stored predictions for {model_name!r} {when}", highlight=False)
        sys.exit(1)
    best = rows[:top]
    records = _signal_records(best)
    if fmt is SignalFormat.parquet:
        _write_parquet(records, output)
    elif fmt is SignalFormat.table:
        table = _signal_table(model_name, best, records)
        if output is None:
            console.print(table)
            return
        with output.open("w") as handle:
            from rich.console import Console

            Console(file=handle, width=120).print(table)
    else:
        text = _csv(records) if fmt is SignalFormat.csv else json.dumps(records, indent=2, default=_json_default)
        if output is None:
            sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
            return
        output.write_text(text)
    console.print(f"wrote {len(records)} rows to {output}")


def _signal_records(best: list[Prediction]) -> list[dict[str, object]]:
    return [
        {"rank": rank, "instrument": r.instrument, "score": r.score, "trading_date": r.trading_date.isoformat(),
         "model_id": r.model_id, "data_version": r.data_version}
        for rank, r in enumerate(best, start=1)
    ]


def _write_parquet(records: list[dict[str, object]], output: Path | None) -> None:
    if output is None:
        raise typer.BadParameter("--format parquet needs --output FILE")
    import pandas as pd

    pd.DataFrame.from_records(records).to_parquet(output, index=False)


def _signal_table(model_name: str, best: list[Prediction], records: list[dict[str, object]]) -> Table:
    table = Table(title=f"{model_name} on {best[0].trading_date} ({best[0].model_id})")
    for column in ("rank", "instrument", "score"):
        table.add_column(column, justify="left" if column == "instrument" else "right")
    for record in records:
        table.add_row(str(record["rank"]), str(record["instrument"]), f"{record['score']:.6f}")
    return table


def _csv(records: list[dict[str, object]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _json_default(value: object) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
