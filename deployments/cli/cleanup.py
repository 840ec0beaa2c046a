"""`qmp cleanup`: the cleanup flow's logic from the command line, against the registry the settings name."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from deployments.cli.console import console
from registry import ModelRegistry
from registry.retention import CleanupPolicy, CleanupReport, make_policy, summarize
from registry.settings import load_settings

DEFAULTS = CleanupPolicy()


def cleanup(
    max_age_days: Annotated[int, typer.Option(min=0, help="Archive non-production models trained more than N days ago.")] = DEFAULTS.max_age_days,
    keep_last: Annotated[int, typer.Option(min=0, help="Always keep the newest N models of each name.")] = DEFAULTS.keep_last,
    keep_best: Annotated[int | None, typer.Option(min=1, help="Also keep the K best of each name by the primary metric.")] = None,
    purge_archived_after_days: Annotated[
        int | None, typer.Option(min=0, help="Delete model files of models archived longer than N days (rows stay).")
    ] = None,
    orphan_grace_hours: Annotated[float, typer.Option(min=0, help="Leave orphan directories younger than this.")] = 1.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    replay: Annotated[
        str | None, typer.Option("--replay", help="Archive every window of this rolling replay (its id) and nothing else.")
    ] = None,
) -> None:
    """Archive stale models, purge long-archived model files and sweep orphan directories."""
    if replay is not None:
        archive_replay_command(replay, dry_run)
        return
    policy = make_policy(max_age_days=max_age_days, keep_last=keep_last, keep_best=keep_best,
                         purge_archived_after_days=purge_archived_after_days, dry_run=dry_run)
    settings = load_settings()
    with ModelRegistry(settings.registry_dir, settings.database_url) as reg:
        result = reg.archive_stale(**policy.model_dump())
        sweep = reg.sweep_orphans(grace_period=timedelta(hours=orphan_grace_hours), dry_run=dry_run)
    report = summarize(result, sweep)
    console.print(cleanup_table(report))
    console.print(report.summary(), highlight=False)


def cleanup_table(report: CleanupReport) -> Table:
    """The per-name counts, totals last."""
    title = "Registry cleanup (dry run: nothing changed)" if report.dry_run else "Registry cleanup"
    table = Table(title=title)
    columns = ("model name", "archived", "purged", "bytes reclaimed", "orphans removed")
    for column in columns:
        table.add_column(column, justify="left" if column == "model name" else "right")
    for row in report.rows:
        table.add_row(row.model_name, str(row.archived), str(row.purged), str(row.bytes_reclaimed),
                      str(row.orphans_removed))
    t = report.totals
    table.add_section()
    table.add_row("[bold]total[/]", str(t.archived), str(t.purged), str(t.bytes_reclaimed), str(t.orphans_removed))
    return table


def archive_replay_command(replay_id: str, dry_run: bool) -> None:
    """`qmp cleanup --replay ID`: archive a whole replay's windows."""
    from tasks.core.replay_result import archive_replay

    ids = archive_replay(replay_id, load_settings(), dry_run=dry_run)
    if not ids:
        console.print(f"replay {replay_id}: no unarchived window versions", highlight=False)
        return
    verb = "would archive" if dry_run else "archived"
    console.print(f"replay {replay_id}: {verb} {len(ids)} window versions ({ids[0]} .. {ids[-1]})", highlight=False)
