"""Cleanup rules: archive stale non-production models, purge long-archived artifacts, sweep orphan directories.

A model is stale when its training date (which defaults to its registration day) is strictly before
`now - max_age_days`: a model exactly `max_age_days` old is kept. Whatever its age, a model is never
archived when it is in production, is its name's previous production model (the rollback target), is
waiting for an approval decision, is among the `keep_last` newest unarchived models of its name (by
training date, then registration order) or among the `keep_best` unarchived models with the best primary
metric. Archiving and purging are one set-based transaction: the targets are pinned in a temporary table
under the name locks, then one INSERT ... SELECT writes their history and one UPDATE per action changes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from registry.artifacts.store import METADATA_FILE, MODEL_FILE, STAGING_DIR, EntryState
from registry.errors import InvalidCleanupPolicyError
from registry.store import cleanup as sql
from registry.store import lock_name

if TYPE_CHECKING:
    from registry.artifacts.store import ArtifactStore
    from registry.store import EventSpec
    from registry.store.db import Database

# The artifact store a version was written to, from its recorded location and model id.
LocateArtifacts = Callable[[str | None, str], "ArtifactStore"]

DEFAULT_ORPHAN_GRACE = timedelta(hours=1)
# Only directories shaped like a model's artifacts are ever swept from the registry root.
MODEL_DIR_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*_v[A-Za-z0-9.+-]+$")
ARTIFACT_FILES = frozenset({MODEL_FILE, METADATA_FILE})


class CleanupPolicy(BaseModel):
    """What `archive_stale` keeps and removes (the cleanup flow's and `qmp cleanup`'s parameters)."""

    max_age_days: int = Field(30, ge=0, description="Archive non-production models trained more than this many days ago.")
    keep_last: int = Field(3, ge=0, description="Always keep the newest N models of each name unarchived.")
    keep_best: int | None = Field(None, ge=1, description="Also keep the K best of each name by the primary metric.")
    purge_archived_after_days: int | None = Field(
        None, ge=0, description="Delete the model files of models archived longer than this (rows and history stay)."
    )
    dry_run: bool = Field(False, description="Report what would change without changing anything.")


class NameCleanup(BaseModel):
    """What cleanup did (or would do) for one model name."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    archived: int = 0
    purged: int = 0
    bytes_reclaimed: int = 0
    orphans_removed: int = 0


class CleanupResult(BaseModel):
    """What `archive_stale` changed, or would change in a dry run."""

    dry_run: bool
    stale_before: date
    archived_ids: list[str]
    purged_ids: list[str]
    bytes_reclaimed: int
    per_name: list[NameCleanup]


class OrphanSweepResult(BaseModel):
    """Artifact directories without a registry row: removed ones, and recent ones left for later."""

    dry_run: bool
    removed: dict[str, int] = Field(description="Directory (relative to the registry root) -> bytes it held.")
    kept_recent: list[str]

    @property
    def bytes_reclaimed(self) -> int:
        return sum(self.removed.values())


def make_policy(**values: Any) -> CleanupPolicy:
    """A CleanupPolicy, or InvalidCleanupPolicyError naming the bad parameters."""
    try:
        return CleanupPolicy(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidCleanupPolicyError(f"invalid cleanup parameters: {problems}") from None


# -- archive and purge ------------------------------------------------------------------------------


def archive_stale(
    db: Database, locate: LocateArtifacts, policy: CleanupPolicy, *, metric: str, higher_is_better: bool,
    spec: EventSpec, now: datetime,
) -> CleanupResult:
    """Archive stale models and purge long-archived artifacts in one transaction, then delete purged files
    (from the store `locate` gives for each); `metric` ranks the models `keep_best` keeps."""
    if now.tzinfo is None:
        raise InvalidCleanupPolicyError("archive_stale needs a timezone-aware `now`")
    stale_before = (now.astimezone(UTC) - timedelta(days=policy.max_age_days)).date()
    archive = sql.archive_targets(stale_before, policy.keep_last, policy.keep_best, metric, higher_is_better)
    purge = sql.purge_targets(policy.purge_archived_after_days, now)
    if policy.dry_run:
        preview = db.run(lambda session: sql.preview_cleanup(session, archive, purge), read_only=True)
        return _result(True, stale_before, [(m, n, a, size) for m, n, a, size, _ in preview])
    changed = db.run(lambda session: sql.apply_cleanup(
        session, archive, purge, spec, stale_before, policy.purge_archived_after_days, now))
    # Files go only after the commit that marks the rows purged (a crash leaves a harmless file), from
    # where each version's artifact was written.
    freed = {model_id: locate(location, model_id).delete_model_file(model_id)
             for model_id, _name, action, _size, location in changed if action == "purged"}
    return _result(False, stale_before, [(m, n, a, freed.get(m, 0)) for m, n, a, _, _ in changed])


def _result(dry_run: bool, stale_before: date, changed: list[tuple[str, str, str, int]]) -> CleanupResult:
    # Counted in plain lists, one NameCleanup per name at the end: a pydantic model per target would cost
    # more than the whole count on a large archive (see benchmarks/README.md).
    counts: dict[str, list[int]] = {}  # name -> [archived, purged, bytes reclaimed]
    for _model_id, name, action, size in changed:
        tally = counts.get(name)
        if tally is None:
            tally = counts[name] = [0, 0, 0]
        if action == "archived":
            tally[0] += 1
        else:
            tally[1] += 1
            tally[2] += size
    return CleanupResult(
        dry_run=dry_run,
        stale_before=stale_before,
        archived_ids=sorted(m for m, _, a, _ in changed if a == "archived"),
        purged_ids=sorted(m for m, _, a, _ in changed if a == "purged"),
        bytes_reclaimed=sum(tally[2] for tally in counts.values()),
        per_name=[NameCleanup(model_name=name, archived=archived, purged=purged, bytes_reclaimed=freed)
                  for name, (archived, purged, freed) in sorted(counts.items())],
    )


# -- orphan sweep -----------------------------------------------------------------------------------


def sweep_orphans(
    db: Database, artifacts: ArtifactStore, *, grace_period: timedelta, dry_run: bool, now: datetime
) -> OrphanSweepResult:
    """Remove directories of `artifacts` that no row owns and that nothing touched within `grace_period`."""
    # Directories first, ids second: a registration committing in between is then seen as owned.
    entries = artifacts.entries()
    rows = db.run(sql.version_files, read_only=True)

    def here(model_id: str, location: str | None) -> bool:
        """Whether the version's artifact was written to this store (NULL: before locations were recorded)."""
        return location is None or location == f"{artifacts.location}/{model_id}"

    owned = {str(model_id) for model_id, _, _, location in rows if here(model_id, location)}
    purged = {str(model_id): int(size) for model_id, is_purged, size, location in rows
              if is_purged and here(model_id, location)}
    horizon = (now - grace_period).timestamp()
    removed: dict[str, int] = {}
    recent: list[str] = []
    for path in sorted(entries):
        state = artifacts.entry_state(path)
        if state is not None and path.name in purged and MODEL_FILE in state.names:
            # A purge commits before it deletes files: a crash in between leaves the model file of a
            # purged row. Purging is final (the row can never serve again), so the file goes now.
            label = f"{path.relative_to(artifacts.root).as_posix()}/{MODEL_FILE}"
            removed[label] = purged[path.name] if dry_run else artifacts.delete_model_file(path.name)
            continue
        if state is None or not _is_orphan(path, state, artifacts.root, owned):
            continue
        label = path.relative_to(artifacts.root).as_posix()
        if state.touched >= horizon:
            recent.append(label)
            continue
        if dry_run:
            removed[label] = state.size
        elif path.parent.name == STAGING_DIR:
            artifacts.remove_entry(path)
            removed[label] = state.size
        elif db.run(partial(_remove_unowned, artifacts=artifacts, path=path, now=now, horizon=horizon)):
            removed[label] = state.size
    return OrphanSweepResult(dry_run=dry_run, removed=removed, kept_recent=recent)


def _remove_unowned(
    session: Session, *, artifacts: ArtifactStore, path: PurePath, now: datetime,
    horizon: float,
) -> bool:
    """Remove a model directory under its name's lock, after checking again that no row owns it.

    Registration publishes a directory while holding the same lock, so a re-registration of a swept
    id can never have its fresh directory removed here.
    """
    lock_name(session, orphan_name(path.name), now, create=False)
    owned = sql.owns_directory(session, path.name, f"{artifacts.location}/{path.name}")
    state = artifacts.entry_state(path)
    if owned or state is None or state.touched >= horizon:
        return False
    artifacts.remove_entry(path)
    return True


def _is_orphan(path: PurePath, state: EntryState, root: PurePath, owned: set[str]) -> bool:
    if path.parent.name == STAGING_DIR and path.parent.parent == root:
        return True  # staging directories belong to no row, ever
    if path.name in owned or not MODEL_DIR_PATTERN.match(path.name):
        return False
    # Anything else found in the root (say an MLflow artifact directory) is not the registry's to remove.
    return state.names <= ARTIFACT_FILES


def orphan_name(label: str) -> str:
    """The model name an orphan directory belonged to (`.staging` for an unfinished registration)."""
    if label.startswith(STAGING_DIR):
        return STAGING_DIR
    return label.rsplit("_v", 1)[0]


# -- report -----------------------------------------------------------------------------------------


class CleanupReport(BaseModel):
    """Counts per name and their totals: computed once, drawn as Markdown (`flows.reporting`) and as a Rich
    table (`deployments.cli.console`)."""

    dry_run: bool
    stale_before: date
    rows: list[NameCleanup]
    totals: NameCleanup

    def summary(self) -> str:
        """One sentence: what changed (or would change in a dry run)."""
        t = self.totals
        verb = "would be" if self.dry_run else "were"
        return (
            f"{t.archived} models trained before {self.stale_before.isoformat()} {verb} archived, "
            f"{t.purged} archived model files {verb} purged and {t.orphans_removed} orphan directories {verb} "
            f"removed: {_size(t.bytes_reclaimed)} {'reclaimable' if self.dry_run else 'reclaimed'}."
        )


def summarize(result: CleanupResult, sweep: OrphanSweepResult | None = None) -> CleanupReport:
    """Merge the archive/purge result and the orphan sweep into one per-name report."""
    rows = {r.model_name: r.model_copy() for r in result.per_name}
    for label, size in (sweep.removed if sweep else {}).items():
        counts = rows.setdefault(orphan_name(label), NameCleanup(model_name=orphan_name(label)))
        counts.orphans_removed += 1
        counts.bytes_reclaimed += size
    ordered = [rows[name] for name in sorted(rows)]
    totals = NameCleanup(
        model_name="total",
        archived=sum(r.archived for r in ordered),
        purged=sum(r.purged for r in ordered),
        bytes_reclaimed=sum(r.bytes_reclaimed for r in ordered),
        orphans_removed=sum(r.orphans_removed for r in ordered),
    )
    return CleanupReport(dry_run=result.dry_run, stale_before=result.stale_before, rows=ordered, totals=totals)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
