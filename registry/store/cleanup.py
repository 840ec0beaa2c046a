"""Cleanup's SQL: rank and pick archive and purge targets, change them in one set-based transaction, and
answer the orphan sweep's ownership questions. The rules themselves are described in `registry.retention`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from registry.replays import REPLAY_NAME_LIKE
from registry.statuses import ModelStatus
from registry.store.common import EventSpec
from registry.store.tables import (
    VERSIONS_WITH_STATE,
    ModelEventRow,
    ModelMetricRow,
    ModelNameRow,
    ModelStateRow,
    ModelVersionRow,
    UTCDateTime,
)

# A target row: primary key, model id, name, status, artifact size, artifact location.
Target = tuple[int, str, str, str, int, str | None]
# What changed: model id, name, action ("archived" or "purged"), artifact size, artifact location.
Changed = tuple[str, str, str, int, str | None]
ARCHIVABLE = (ModelStatus.REGISTERED.value, ModelStatus.CANDIDATE.value)
ARCHIVED = ModelStatus.ARCHIVED.value
CLEANUP_WORK_MEM = "64MB"  # PostgreSQL's sort memory for one cleanup transaction


def rollback_targets() -> Select[tuple[str | None]]:
    # NOT IN over a small uncorrelated list: hashed once on PostgreSQL, whatever its statistics say.
    return select(ModelNameRow.previous_production_id).where(ModelNameRow.previous_production_id.is_not(None))


def archive_targets(
    stale_before: date, keep_last: int, keep_best: int | None, metric: str, higher_is_better: bool
) -> Select[Target]:
    """One pass over the unarchived rows: rank them per name, then filter (no join a stale plan could square)."""
    v, s = ModelVersionRow, ModelStateRow
    newest_first = func.row_number().over(partition_by=v.model_name, order_by=(v.training_date.desc(), v.id.desc()))
    metric_order = ModelMetricRow.value.desc() if higher_is_better else ModelMetricRow.value.asc()
    best_first = func.row_number().over(
        partition_by=v.model_name, order_by=(ModelMetricRow.value.is_(None), metric_order, v.id.desc())
    )
    ranked = (
        select(
            v.id, v.model_id, v.model_name, s.status, v.artifact_size, v.artifact_location, v.training_date,
            s.approval_requested_at,
            newest_first.label("recency"), best_first.label("merit"), ModelMetricRow.value.label("metric"),
        )
        .select_from(VERSIONS_WITH_STATE)
        .outerjoin(ModelMetricRow, and_(ModelMetricRow.model_pk == v.id, ModelMetricRow.name == metric))
        .where(s.status != ARCHIVED)
        .subquery("ranked")
    )
    r = ranked.c
    query = select(r.id, r.model_id, r.model_name, r.status, r.artifact_size, r.artifact_location).where(
        r.status.in_(ARCHIVABLE),
        r.training_date < stale_before,
        r.approval_requested_at.is_(None),
        r.recency > keep_last,
        r.model_id.not_in(rollback_targets()),
        # A replay is archived as a whole, by its id: age and keep_last would cut windows out of it.
        r.model_name.not_like(REPLAY_NAME_LIKE),
    )
    if keep_best is not None:
        query = query.where(or_(r.metric.is_(None), r.merit > keep_best))
    return query


def purge_targets(purge_after_days: int | None, now: datetime) -> Select[Target] | None:
    """Archived versions whose files may go (None when purging was not asked for)."""
    if purge_after_days is None:
        return None
    v, s = ModelVersionRow, ModelStateRow
    return select(v.id, v.model_id, v.model_name, s.status, v.artifact_size, v.artifact_location).select_from(
        VERSIONS_WITH_STATE).where(
        s.status == ARCHIVED,
        s.purged_at.is_(None),
        s.archived_at < now - timedelta(days=purge_after_days),
        # An archived rollback target may still be restored by hand: keep its file.
        v.model_id.not_in(rollback_targets()),
    )


def _targets_table() -> Table:
    return Table(
        "qmp_cleanup_targets",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("model_id", String(200)),
        Column("model_name", String(100)),
        Column("from_status", String(16)),
        Column("size", BigInteger),
        Column("location", String(1024)),
        Column("action", String(16)),
        prefixes=["TEMPORARY"],
    )


def apply_cleanup(
    session: Session,
    archive: Select[Target],
    purge: Select[Target] | None,
    spec: EventSpec,
    stale_before: date,
    purge_after_days: int | None,
    now: datetime,
) -> list[Changed]:
    """Pin the targets under the name locks, change them with one UPDATE per action, then write their history."""
    selections = {"archived": archive} if purge is None else {"archived": archive, "purged": purge}
    names = _names_with_targets(session, stale_before, purge is not None)
    if not names:
        return []
    _lock_names(session, names)
    targets = _targets_table()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Ranking every unarchived version and ordering their history rows are large sorts that spill to disk
        # with the server's default work_mem (sizes in benchmarks/README.md). This transaction only.
        session.execute(text(f"SET LOCAL work_mem = '{CLEANUP_WORK_MEM}'"))
    targets.create(connection)
    _pin_targets(session, targets, selections, names)
    _change_pinned(session, targets, now)
    reasons = {
        "archived": spec.reason or f"stale: trained before {stale_before.isoformat()}",
        "purged": spec.reason or f"archived more than {purge_after_days} days ago: model file deleted",
    }
    _record_history(session, targets, spec, reasons, now)
    t = targets.c
    changed = [(str(m), str(n), str(a), int(s), loc) for m, n, a, s, loc in session.execute(
        select(t.model_id, t.model_name, t.action, t.size, t.location)).all()]
    targets.drop(connection)
    return changed


def _names_with_targets(session: Session, stale_before: date, purging: bool) -> list[str]:
    """Names that may have targets, found without ranking (a superset is harmless: it only locks more)."""
    v, s = ModelVersionRow, ModelStateRow
    candidates = or_(and_(s.status.in_(ARCHIVABLE), v.training_date < stale_before),
                     and_(s.status == ARCHIVED, s.purged_at.is_(None)) if purging else false())
    return sorted(str(name) for name in session.scalars(
        select(v.model_name).select_from(VERSIONS_WITH_STATE).where(candidates).distinct()))


def _lock_names(session: Session, names: list[str]) -> None:
    """Lock the affected names in one order, as promotions do, so cleanup serializes with them."""
    session.execute(select(ModelNameRow.name).where(ModelNameRow.name.in_(names))
                    .order_by(ModelNameRow.name).with_for_update())


def _pin_targets(session: Session, targets: Table, selections: dict[str, Select[Target]], names: list[str]) -> None:
    """Copy each action's targets among `names` into the temporary targets table."""
    for action, sel in selections.items():
        pinned = sel.add_columns(literal(action, String)).where(sel.selected_columns.model_name.in_(names))
        session.execute(insert(targets).from_select(list(targets.c.keys()), pinned))


def _change_pinned(session: Session, targets: Table, now: datetime) -> None:
    """Archive and purge the pinned rows, then keep in the targets table only the rows this call changed."""
    s, t = ModelStateRow, targets.c

    def pinned_ids(action: str) -> Any:
        return select(t.id).where(t.action == action).scalar_subquery()

    # The WHERE re-checks what other writers may change without the name lock (an approval request):
    # PostgreSQL re-evaluates it on rows it had to wait for, so such a row is skipped, never archived.
    # Only the narrow state rows change: the version rows (and their unique indexes) are never rewritten.
    session.execute(update(s).where(
        s.model_pk.in_(pinned_ids("archived")), s.status.in_(ARCHIVABLE), s.approval_requested_at.is_(None),
    ).values(status=ARCHIVED, archived_at=now, updated_at=now).execution_options(synchronize_session=False))
    session.execute(update(s).where(s.model_pk.in_(pinned_ids("purged")), s.purged_at.is_(None))
                    .values(purged_at=now, updated_at=now).execution_options(synchronize_session=False))
    # Uncorrelated IN lists are hashed once; a correlated EXISTS here was planned as a nested loop over
    # the just-updated table (stale statistics), far slower on PostgreSQL (see benchmarks/README.md).
    changed_by_us = or_(
        and_(t.action == "archived", t.id.in_(select(s.model_pk).where(s.archived_at == now, s.status == ARCHIVED))),
        and_(t.action == "purged", t.id.in_(select(s.model_pk).where(s.purged_at == now))),
    )
    session.execute(delete(targets).where(~changed_by_us))


def _record_history(session: Session, targets: Table, spec: EventSpec, reasons: dict[str, str], now: datetime) -> None:
    """One history event per changed target, in one INSERT ... SELECT."""
    t = targets.c
    session.execute(insert(ModelEventRow).from_select(
        ["model_id", "model_name", "event", "from_status", "to_status", "actor", "reason", "flow_run_id", "created_at"],
        select(
            t.model_id, t.model_name, t.action, t.from_status, literal(ARCHIVED, String),
            literal(spec.actor, String),
            case((t.action == "archived", literal(reasons["archived"], String)), else_=literal(reasons["purged"], String)),
            literal(spec.flow_run_id, String), literal(now, UTCDateTime()),
        ).order_by(t.action, t.model_name, t.id),
    ))


def preview_cleanup(session: Session, archive: Select[Target], purge: Select[Target] | None) -> list[Changed]:
    """What `apply_cleanup` would change, without changing it."""
    rows = [(*r, "archived") for r in session.execute(archive)]
    if purge is not None:
        rows += [(*r, "purged") for r in session.execute(purge)]
    return [(str(r[1]), str(r[2]), str(r[6]), int(r[4]), r[5]) for r in rows]


def version_files(session: Session) -> list[tuple[str, bool, int, str | None]]:
    """Every version's model id, whether it was purged, its artifact size and location (for the sweep)."""
    v, s = ModelVersionRow, ModelStateRow
    rows = session.execute(select(v.model_id, s.purged_at.is_not(None), v.artifact_size, v.artifact_location)
                           .select_from(VERSIONS_WITH_STATE)).all()
    return [(str(m), bool(p), int(size), loc) for m, p, size, loc in rows]


def owns_directory(session: Session, model_id: str, location: str) -> bool:
    """Whether a version `model_id` was written to `location` (or predates recorded locations)."""
    v = ModelVersionRow
    here = or_(v.artifact_location.is_(None), v.artifact_location == location)
    return bool(session.scalar(select(exists().where(v.model_id == model_id, here))))
