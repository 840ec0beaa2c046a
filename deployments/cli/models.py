"""`qmp models ...`, `qmp db upgrade` and `qmp registry ...`: the registry from the command line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from deployments.cli.console import console, err_console, history_table, metrics_table, models_table
from deployments.cli.registry_access import existing_registry
from registry import ModelFilter, ModelInfo, ModelNotFoundError, ModelRegistry, ModelStatus
from registry.compat.index_json import export_index, import_index
from registry.settings import load_settings
from registry.store.db import Database, sqlite_url_for

models_app = typer.Typer(help="List, inspect, promote, archive and roll back registered models.", no_args_is_help=True)
db_app = typer.Typer(help="The registry database's schema.", no_args_is_help=True)
registry_app = typer.Typer(help="Compatibility with the original registry API's index.json layout.", no_args_is_help=True)

Reason = Annotated[str | None, typer.Option("--reason", help="Why; recorded in the history.")]
Actor = Annotated[str | None, typer.Option("--actor", help="Who; default: the current user.")]


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{what} must look like KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


@models_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Option("--name", help="Only this model name.")] = None,
    status: Annotated[list[ModelStatus] | None, typer.Option("--status", help="Only these statuses.")] = None,
    model_type: Annotated[str | None, typer.Option("--type", help="Only this model type.")] = None,
    min_metric: Annotated[list[str] | None, typer.Option("--min", help="METRIC=VALUE lower bound, e.g. ic_mean=0.02.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE tag that must match.")] = None,
    replay: Annotated[str | None, typer.Option("--replay", help="Only the windows of this rolling replay (its id).")] = None,
    date_from: Annotated[str | None, typer.Option(help="Trained on or after (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option(help="Trained on or before (YYYY-MM-DD).")] = None,
    order_by: Annotated[str, typer.Option(help="created_at, version, model_name or training_date.")] = "created_at",
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List registered models as a table."""
    minimum = {k: float(v) for k, v in _pairs(min_metric or [], "--min").items()}
    tags = {**_pairs(tag or [], "--tag"), **({"replay_id": replay} if replay else {})}
    flt = ModelFilter(
        model_name=name, status=list(status) if status else None, model_type=model_type,
        min_performance=minimum or None, tags=tags or None,
        date_from=date.fromisoformat(date_from) if date_from else None,
        date_to=date.fromisoformat(date_to) if date_to else None,
        order_by=order_by, limit=limit,  # type: ignore[arg-type]
    )
    with existing_registry() as reg:
        models = reg.list_models(flt)
    if as_json:
        console.print_json(json.dumps([m.model_dump(mode="json") for m in models]))
    else:
        console.print(models_table(models, title=f"Models in {reg.registry_dir}"))


@models_app.command("show")
def show(
    model_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model and its history as JSON.")] = False,
) -> None:
    """Metadata, metrics, tags, hyperparameters, checksum and history of one model, as labelled tables."""
    with existing_registry() as reg:
        info = reg.get_model_info(model_id)
        events = reg.history(model_id=model_id)
    if as_json:
        console.print_json(json.dumps({"model": info.model_dump(mode="json"),
                                       "history": [e.model_dump(mode="json") for e in events]}))
        return
    fields = info.model_dump(mode="json", exclude={"performance_metrics", "hyperparameters", "dataset_info", "tags"})
    body = "\n".join(f"[bold]{k}[/]: {v}" for k, v in fields.items() if v not in (None, {}, []))
    console.print(Panel(body + dataset_lines(info), title=model_id))
    console.print(metrics_table(info.performance_metrics))
    for title, values in (("Tags", info.tags), ("Hyperparameters", info.hyperparameters)):
        if values:
            console.print(labelled_table(title, values))
    console.print(history_table(events, title=f"History of {model_id}"))


def labelled_table(title: str, values: Mapping[str, Any]) -> Table:
    """A titled two-column table of names and values (nested values as compact JSON)."""
    table = Table(title=title)
    table.add_column("name")
    table.add_column("value", overflow="fold")
    for name in sorted(values):
        value = values[name]
        table.add_row(name, value if isinstance(value, str) else json.dumps(value, default=str))
    return table


def dataset_lines(info: ModelInfo) -> str:
    """The dataset a version was trained on: the exact segments and the data version first."""
    if info.dataset_info is None:
        return ""
    dataset = info.dataset_info.model_dump(mode="json")
    segments = dataset.pop("segments", None) or {}
    lines = ["", "[bold]dataset[/]:"]
    if segments:
        lines.append("  segments: " + ", ".join(f"{name} {a}..{b}" for name, (a, b) in segments.items()))
    for key in ("data_version", "window"):
        if dataset.get(key) is not None:
            lines.append(f"  {key.replace('_', ' ')}: {dataset.pop(key)}")
    lines.extend(f"  {k}: {v}" for k, v in dataset.items() if v not in (None, {}, []))
    return "\n".join(lines)


@models_app.command("promote")
def promote(model_id: str, reason: Reason = None, actor: Actor = None) -> None:
    """Make a model the production model of its name (the old one becomes a candidate)."""
    from tasks.core.lifecycle import promote as promote_model
    from tasks.events import emit_promoted

    info, previous = promote_model(model_id, load_settings(), actor=actor, reason=reason)
    emit_promoted(info, previous, actor=actor, reason=reason)
    console.print(f"[green]{info.model_id} is now the production model of {info.model_name}[/]")


@models_app.command("archive")
def archive(
    model_id: str, reason: Reason = None, actor: Actor = None,
    force: Annotated[bool, typer.Option(help="Retire a production model (leaves the name without production).")] = False,
) -> None:
    """Archive a model."""
    with existing_registry() as reg:
        reg.set_model_status(model_id, ModelStatus.ARCHIVED, actor=actor, reason=reason, force=force)
    console.print(f"{model_id} archived")


@models_app.command("restore")
def restore(model_id: str, reason: Reason = None, actor: Actor = None) -> None:
    """Bring an archived model back to registered."""
    with existing_registry() as reg:
        reg.set_model_status(model_id, ModelStatus.REGISTERED, actor=actor, reason=reason)
    console.print(f"{model_id} restored to registered")


@models_app.command("delete")
def delete(
    model_id: str, reason: Reason = None, actor: Actor = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a non-production model's row and files (its history stays)."""
    if not yes:
        typer.confirm(f"Delete {model_id} and its artifact?", abort=True)
    with existing_registry() as reg:
        reg.delete_model(model_id, actor=actor, reason=reason)
    console.print(f"{model_id} deleted")


@models_app.command("rollback")
def rollback(model_name: str, reason: Reason = None, actor: Actor = None) -> None:
    """Restore the previous production model of a name (after checking its artifact)."""
    from tasks.core.lifecycle import rollback as rollback_production
    from tasks.events import emit_rolled_back

    info, previous = rollback_production(model_name, load_settings(), actor=actor, reason=reason)
    emit_rolled_back(info, previous, actor=actor, reason=reason)
    console.print(f"[green]rolled back: {info.model_id} is the production model of {model_name} again[/]")


@models_app.command("history")
def history(
    model_name: str, limit: Annotated[int | None, typer.Option(help="Only the latest N events.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every change to a model name's versions, oldest first."""
    with existing_registry() as reg:
        events = reg.history(model_name=model_name, limit=limit)
        if not events and not reg.list_models(ModelFilter(model_name=model_name, limit=1)):
            raise ModelNotFoundError(f"no model named {model_name!r} in registry at {reg.registry_dir}")
    if as_json:
        console.print_json(json.dumps([e.model_dump(mode="json") for e in events]))
        return
    console.print(history_table(events, title=f"History of {model_name}"))


@db_app.command("upgrade")
def upgrade(database_url: Annotated[str | None, typer.Option(help="Default: QMP_DATABASE_URL or the SQLite file.")] = None) -> None:
    """Apply the registry's schema migrations."""
    settings = load_settings(database_url=database_url)
    registry_dir = settings.registry_dir.expanduser().resolve()
    if settings.database_url is None:
        registry_dir.mkdir(parents=True, exist_ok=True)  # for the embedded SQLite file
    db = Database(settings.database_url or sqlite_url_for(registry_dir))
    try:
        db.upgrade(artifact_root=(settings.artifact_uri or str(registry_dir)).rstrip("/"))
    finally:
        db.dispose()
    console.print("registry schema is up to date")


@registry_app.command("export-index")
def export_index_command(out: Annotated[Path | None, typer.Option(help="Default: <registry_dir>/index.json.")] = None) -> None:
    """Write the original API's index.json for the registry."""
    with existing_registry() as reg:
        path = export_index(reg, out)
    console.print(f"wrote {path}")


@registry_app.command("import-index")
def import_index_command(source: Path, actor: Actor = None) -> None:
    """Import a registry directory of the original API (index.json + model directories)."""
    with ModelRegistry.from_settings() as reg:
        report = import_index(reg, source, actor=actor)
    console.print(f"imported {len(report.imported)} models")
    for key, why in report.skipped.items():
        console.print(f"[yellow]skipped {key}: {why}[/]")
    if report.skipped:
        raise typer.Exit(1)


def _compare_on_same_window(first: str, second: str, days: int | None, provider_uri: Path | None,
                            as_json: bool) -> None:
    """`compare --same-window`: both models scored on the same days after both trained (Qlib is loaded here)."""
    from dataclasses import asdict

    from rich.table import Table

    from registry.settings import load_settings
    from tasks.core.qlib.same_window import compare_on_same_window

    with existing_registry() as reg:
        result = compare_on_same_window(first, second, settings=load_settings(), registry=reg, days=days,
                                        provider_uri=provider_uri)
    if as_json:
        console.print_json(json.dumps(asdict(result), default=str))
        return
    table = Table(title=f"{first} vs {second} on the same days", caption=result.note)
    for column in ("metric", first, second, "difference"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, a in result.metrics[first].items():
        b = result.metrics[second][name]
        table.add_row(name, f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}")
    console.print(table)


@models_app.command("compare")
def compare(
    first: str, second: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    same_window: Annotated[bool, typer.Option("--same-window", help="Score both on the same days neither saw (loads Qlib).")] = False,
    days: Annotated[int | None, typer.Option("--days", min=1, max=5000, help="--same-window: newest trading days (default: the shorter test segment).")] = None,
    provider_uri: Annotated[Path | None, typer.Option("--provider-uri", help="--same-window: Qlib data directory (default: QMP_PROVIDER_URI).")] = None,
) -> None:
    """Metrics of two models side by side with differences, then their hyperparameter and dataset diffs."""
    from rich.table import Table

    from registry.views.side_by_side import compare_models

    if same_window:
        _compare_on_same_window(first, second, days, provider_uri, as_json)
        return

    with existing_registry() as reg:
        result = compare_models(reg.get_model_info(first), reg.get_model_info(second))
    if as_json:
        console.print_json(result.model_dump_json())
        return
    if result.window_warning:
        err_console.print(f"[yellow]{result.window_warning}[/]", highlight=False, soft_wrap=True)
    metrics = Table(title=f"Metrics: {first} vs {second}")
    for column in ("metric", first, second, "difference"):
        metrics.add_column(column, justify="left" if column == "metric" else "right")
    for row in result.metrics:
        change = "-" if row.difference is None else f"[{'green' if row.difference > 0 else 'red' if row.difference < 0 else 'default'}]{row.difference:+.4f}[/]"
        metrics.add_row(row.name, "-" if row.first is None else f"{row.first:.4f}",
                        "-" if row.second is None else f"{row.second:.4f}", change)
    console.print(metrics)
    for title, rows in (("Hyperparameters", result.hyperparameters), ("Dataset", result.dataset)):
        if not rows:
            console.print(f"{title}: identical")
            continue
        table = Table(title=f"{title} that differ")
        for column in ("key", first, second):
            table.add_column(column)
        for item in rows:
            table.add_row(item.key, json.dumps(item.first, default=str), json.dumps(item.second, default=str))
        console.print(table)
