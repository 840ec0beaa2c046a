"""`qmp cleanup`: the cleanup flow's logic from the command line, against the registry the settings name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deployments.cli.console import cleanup_table, console
from registry import ModelRegistry
from registry.retention import CleanupPolicy, make_policy, summarize
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
        str | None, typer.Option("--replay", help="Instead: archive every window of this rolling replay (its id).")
    ] = None,
    feature_cache: Annotated[
        bool, typer.Option("--feature-cache", help="Instead: report and delete the data directory's feature caches.")
    ] = False,
    provider_uri: Annotated[
        Path | None, typer.Option("--provider-uri", help="Data directory whose feature caches to clean (QMP_PROVIDER_URI).")
    ] = None,
) -> None:
    """Archive stale models, purge long-archived model files and sweep orphan directories."""
    if replay is not None:
        archive_replay_command(replay, dry_run)
        return
    if feature_cache:
        cleanup_feature_cache(provider_uri, dry_run)
        return
    policy = make_policy(max_age_days=max_age_days, keep_last=keep_last, keep_best=keep_best,
                         purge_archived_after_days=purge_archived_after_days, dry_run=dry_run)
    with ModelRegistry.from_settings() as reg:
        result = reg.archive_stale(**policy.model_dump())
        sweep = reg.sweep_orphans(grace_period=timedelta(hours=orphan_grace_hours), dry_run=dry_run)
    report = summarize(result, sweep)
    console.print(cleanup_table(report))
    console.print(report.summary(), highlight=False)


def archive_replay_command(replay_id: str, dry_run: bool) -> None:
    """`qmp cleanup --replay ID`: archive a whole replay's windows."""
    from tasks.core.replay.result import archive_replay

    ids = archive_replay(replay_id, load_settings(), dry_run=dry_run)
    if not ids:
        console.print(f"replay {replay_id}: no unarchived window versions", highlight=False)
        return
    verb = "would archive" if dry_run else "archived"
    console.print(f"replay {replay_id}: {verb} {len(ids)} window versions ({ids[0]} .. {ids[-1]})", highlight=False)


def cleanup_feature_cache(provider_uri: Path | None, dry_run: bool) -> None:
    """Report the feature caches of a data directory (Qlib's dataset cache, the local store) and delete them."""
    from tasks.core.features.cache import cache_usage, delete_cache, qlib_cache_dir
    from tasks.core.features.raw import local_store_dir

    settings = load_settings(provider_uri=provider_uri)
    if settings.provider_uri is None:
        raise typer.BadParameter("name the data directory (--provider-uri or QMP_PROVIDER_URI)")
    table = Table(title="Feature caches (dry run: nothing deleted)" if dry_run else "Feature caches")
    for column in ("cache", "path", "entries", "size", "deleted"):
        table.add_column(column, justify="right" if column in {"entries", "size"} else "left")
    total = 0
    for name, path in (("qlib dataset cache", qlib_cache_dir(settings.provider_uri, settings)),
                       ("local store", local_store_dir(settings.provider_uri, settings))):
        usage = cache_usage(path) if dry_run else delete_cache(path)
        total += usage.bytes
        table.add_row(name, str(path), str(usage.entries), _size(usage.bytes), "yes" if usage.removed else "no")
    console.print(table)
    verb = "would free" if dry_run else "freed"
    console.print(f"feature caches: {verb} {_size(total)}", highlight=False)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
