"""Cleanup rules on SQLite and PostgreSQL: what archive_stale archives, keeps and purges; the orphan sweep."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from registry import ModelRegistry, ModelRegistryError, ModelStatus
from tests.registry.registry_helpers import metadata

NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
STALE = date(2024, 12, 31)  # 31 days before NOW: older than max_age_days=30
BOUNDARY = date(2025, 1, 1)  # exactly 30 days before NOW
FRESH = date(2025, 1, 30)


def add(reg: ModelRegistry, model: Any, name: str, trained: date, ic: float | None = None) -> str:
    return reg.register_model(model, metadata(name, ic_mean=ic, training_date=trained))


def status(reg: ModelRegistry, model_id: str) -> ModelStatus:
    return reg.get_model_info(model_id).status


def test_models_trained_before_the_cutoff_are_archived_each_with_a_history_event(registry, model):
    old = add(registry, model, "alpha", STALE)
    fresh = add(registry, model, "alpha", FRESH)

    result = registry.archive_stale(max_age_days=30, keep_last=0, now=NOW, actor="cron")

    assert result.archived_ids == [old]
    assert status(registry, old) == ModelStatus.ARCHIVED
    assert status(registry, fresh) != ModelStatus.ARCHIVED
    assert registry.get_model_info(old).archived_at == NOW
    last = registry.history(model_id=old)[-1]
    assert (last.event, last.to_status, last.actor) == ("archived", ModelStatus.ARCHIVED, "cron")
    assert [(c.model_name, c.archived) for c in result.per_name] == [("alpha", 1)]


def test_a_model_exactly_max_age_days_old_is_not_stale(registry, model):
    boundary = add(registry, model, "alpha", BOUNDARY)
    older = add(registry, model, "alpha", BOUNDARY - timedelta(days=1))

    result = registry.archive_stale(max_age_days=30, keep_last=0, now=NOW)

    assert result.stale_before == BOUNDARY
    assert result.archived_ids == [older]
    assert status(registry, boundary) != ModelStatus.ARCHIVED


def test_the_production_model_is_never_archived(registry, model):
    production = add(registry, model, "alpha", STALE)
    registry.set_production_model(production)

    result = registry.archive_stale(max_age_days=0, keep_last=0, now=NOW)

    assert result.archived_ids == []
    assert status(registry, production) == ModelStatus.PRODUCTION


def test_the_previous_production_model_is_kept_as_the_rollback_target(registry, model):
    first = add(registry, model, "alpha", STALE)
    registry.set_production_model(first)
    second = add(registry, model, "alpha", STALE)
    registry.set_production_model(second)
    never_promoted = add(registry, model, "alpha", STALE)

    result = registry.archive_stale(max_age_days=30, keep_last=0, now=NOW)

    assert result.archived_ids == [never_promoted]
    assert registry.rollback("alpha").model_id == first


def test_a_model_waiting_for_an_approval_decision_is_not_archived(registry, model):
    waiting = add(registry, model, "alpha", STALE)
    registry.record_event(waiting, "approval_requested", awaiting_approval=True)
    decided = add(registry, model, "alpha", STALE)
    registry.record_event(decided, "approval_requested", awaiting_approval=True)
    registry.record_event(decided, "rejected", awaiting_approval=False)

    result = registry.archive_stale(max_age_days=30, keep_last=0, now=NOW)

    assert result.archived_ids == [decided]
    assert status(registry, waiting) != ModelStatus.ARCHIVED


def test_keep_last_keeps_the_newest_models_of_each_name_whatever_their_age(registry, model):
    alpha = [add(registry, model, "alpha", STALE - timedelta(days=d)) for d in (3, 1, 2)]
    beta = [add(registry, model, "beta", STALE - timedelta(days=d)) for d in (5, 4)]

    result = registry.archive_stale(max_age_days=30, keep_last=2, now=NOW)

    assert result.archived_ids == [alpha[0]]  # the oldest alpha; both betas are within its last two
    assert {c.model_name: c.archived for c in result.per_name} == {"alpha": 1}
    assert all(status(registry, m) != ModelStatus.ARCHIVED for m in beta)


def test_keep_last_counts_only_unarchived_models(registry, model):
    older = add(registry, model, "alpha", STALE - timedelta(days=1))
    newest = add(registry, model, "alpha", STALE)
    registry.set_model_status(newest, ModelStatus.ARCHIVED)

    result = registry.archive_stale(max_age_days=30, keep_last=1, now=NOW)

    assert result.archived_ids == []
    assert status(registry, older) != ModelStatus.ARCHIVED


def test_keep_best_keeps_the_best_models_of_each_name_by_the_primary_metric(registry, model):
    best = add(registry, model, "alpha", STALE, ic=0.09)
    second = add(registry, model, "alpha", STALE, ic=0.05)
    worst = add(registry, model, "alpha", STALE, ic=0.01)
    unmeasured = add(registry, model, "alpha", STALE)

    result = registry.archive_stale(max_age_days=30, keep_last=0, keep_best=2, now=NOW)

    assert sorted(result.archived_ids) == sorted([worst, unmeasured])
    assert status(registry, best) != ModelStatus.ARCHIVED
    assert status(registry, second) != ModelStatus.ARCHIVED


def test_keep_best_follows_a_lower_is_better_primary_metric(tmp_path, database_url, model):
    with ModelRegistry(tmp_path / "reg", database_url, primary_metric="mse", higher_is_better=False) as reg:
        low = reg.register_model(model, metadata("alpha", training_date=STALE, performance_metrics={"mse": 0.1}))
        high = reg.register_model(model, metadata("alpha", training_date=STALE, performance_metrics={"mse": 0.9}))

        result = reg.archive_stale(max_age_days=30, keep_last=0, keep_best=1, now=NOW)

        assert result.archived_ids == [high]
        assert status(reg, low) != ModelStatus.ARCHIVED


def test_dry_run_reports_the_same_changes_without_making_them(registry, model):
    alpha = [add(registry, model, "alpha", STALE) for _ in range(3)]
    registry.archive_stale(max_age_days=30, keep_last=1, now=NOW)
    beta = [add(registry, model, "beta", STALE) for _ in range(2)]
    events_before = registry.history()
    options: dict[str, Any] = dict(max_age_days=30, keep_last=1, purge_archived_after_days=0, now=NOW + timedelta(days=1))

    preview = registry.archive_stale(dry_run=True, **options)

    assert preview.dry_run
    assert (preview.archived_ids, preview.purged_ids) == ([beta[0]], alpha[:2])
    size = registry.get_model_info(alpha[0]).size_bytes
    assert preview.bytes_reclaimed == 2 * size
    assert [c.model_dump() for c in preview.per_name] == [
        {"model_name": "alpha", "archived": 0, "purged": 2, "bytes_reclaimed": 2 * size, "orphans_removed": 0},
        {"model_name": "beta", "archived": 1, "purged": 0, "bytes_reclaimed": 0, "orphans_removed": 0},
    ]
    assert registry.history() == events_before
    assert status(registry, beta[0]) != ModelStatus.ARCHIVED
    assert all(os.path.exists(registry.get_model_info(m).model_path) for m in alpha)
    actual = registry.archive_stale(dry_run=False, **options)
    assert (actual.archived_ids, actual.purged_ids, actual.bytes_reclaimed, actual.per_name) == (
        preview.archived_ids, preview.purged_ids, preview.bytes_reclaimed, preview.per_name)


def test_purge_deletes_model_files_but_keeps_rows_history_and_metadata(registry, model):
    old = add(registry, model, "alpha", STALE, ic=0.02)
    registry.archive_stale(max_age_days=30, keep_last=0, now=NOW)
    info = registry.get_model_info(old)

    result = registry.archive_stale(max_age_days=30, keep_last=0, purge_archived_after_days=7,
                                    now=NOW + timedelta(days=8))

    assert result.purged_ids == [old]
    assert result.bytes_reclaimed == info.size_bytes > 0
    purged = registry.get_model_info(old)
    assert purged.status == ModelStatus.ARCHIVED and purged.purged_at == NOW + timedelta(days=8)
    assert purged.performance_metrics == {"ic_mean": 0.02}
    assert not os.path.exists(purged.model_path) and os.path.exists(purged.metadata_path)
    assert [e.event for e in registry.history(model_id=old)][-2:] == ["archived", "purged"]
    with pytest.raises(ModelRegistryError):
        registry.get_model(old)


def test_purge_waits_until_a_model_was_archived_longer_than_the_limit(registry, model):
    old = add(registry, model, "alpha", STALE)
    registry.archive_stale(max_age_days=30, keep_last=0, now=NOW)

    at_limit = registry.archive_stale(max_age_days=30, purge_archived_after_days=7, now=NOW + timedelta(days=7))
    again = registry.archive_stale(max_age_days=30, purge_archived_after_days=7, now=NOW + timedelta(days=9))
    twice = registry.archive_stale(max_age_days=30, purge_archived_after_days=7, now=NOW + timedelta(days=10))

    assert (at_limit.purged_ids, again.purged_ids, twice.purged_ids) == ([], [old], [])


def test_a_second_run_changes_nothing(registry, model):
    for _ in range(3):
        add(registry, model, "alpha", STALE)
    registry.archive_stale(max_age_days=30, keep_last=1, now=NOW)

    result = registry.archive_stale(max_age_days=30, keep_last=1, now=NOW)

    assert (result.archived_ids, result.purged_ids, result.per_name) == ([], [], [])


def test_out_of_range_parameters_raise_a_registry_error(registry):
    with pytest.raises(ModelRegistryError, match="keep_last"):
        registry.archive_stale(keep_last=-1)


# -- orphan sweep -------------------------------------------------------------------------------------


def make_orphan(reg: ModelRegistry, dirname: str, age: timedelta) -> str:
    path = reg.registry_dir / dirname
    path.mkdir(parents=True)
    (path / "model.pkl").write_bytes(b"x" * 100)
    stamp = time.time() - age.total_seconds()
    for p in (path / "model.pkl", path):
        os.utime(p, (stamp, stamp))
    return dirname


def test_orphan_directories_are_removed_only_after_the_grace_period(registry, model):
    kept = add(registry, model, "alpha", FRESH)
    crashed = make_orphan(registry, "alpha_v9.0.0", age=timedelta(hours=2))
    in_flight = make_orphan(registry, ".staging/0123abcd", age=timedelta(minutes=5))
    old_staging = make_orphan(registry, ".staging/feedbeef", age=timedelta(days=1))

    result = registry.sweep_orphans(grace_period=timedelta(hours=1))

    assert result.removed == {crashed: 100, old_staging: 100}
    assert result.kept_recent == [in_flight]
    assert result.bytes_reclaimed == 200
    assert not (registry.registry_dir / crashed).exists()
    assert (registry.registry_dir / in_flight).exists()
    assert os.path.exists(registry.get_model_info(kept).model_path)
    later = registry.sweep_orphans(now=datetime.now(UTC) + timedelta(hours=2))
    assert later.removed == {in_flight: 100}


def test_orphan_sweep_dry_run_removes_nothing(registry):
    orphan = make_orphan(registry, "alpha_v1.0.0", age=timedelta(days=2))

    result = registry.sweep_orphans(dry_run=True)

    assert result.removed == {orphan: 100}
    assert (registry.registry_dir / orphan).exists()


def test_a_purged_model_and_foreign_directories_are_not_orphans(registry, model):
    old = add(registry, model, "alpha", STALE)
    registry.archive_stale(max_age_days=30, keep_last=0, purge_archived_after_days=0, now=NOW)
    registry.archive_stale(purge_archived_after_days=0, now=NOW + timedelta(days=1))
    foreign = registry.registry_dir / "mlruns"
    (foreign / "1").mkdir(parents=True)
    stamp = time.time() - 86400 * 3
    os.utime(registry.registry_dir / old, (stamp, stamp))
    os.utime(foreign, (stamp, stamp))

    result = registry.sweep_orphans(now=datetime.now(UTC) + timedelta(days=3))

    assert registry.get_model_info(old).purged_at is not None
    assert result.removed == {}
    assert (registry.registry_dir / old / "metadata.json").exists() and foreign.exists()


# -- scale --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_archiving_twenty_thousand_stale_rows_takes_a_handful_of_statements(registry):
    rows = 20_000
    with registry.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO model_names (name, registrations, created_at) VALUES "
                          "('bulk_a', 0, :t), ('bulk_b', 0, :t)"), {"t": NOW.replace(tzinfo=None)})
        conn.execute(
            text(
                "INSERT INTO model_versions (model_id, model_name, version, v_major, v_minor, v_patch, v_release,"
                " v_label, model_type, training_date, hyperparameters, artifact_sha256, artifact_size,"
                " created_at) "
                "SELECT 'bulk_' || CASE WHEN n % 2 = 0 THEN 'a' ELSE 'b' END || '_v' || n || '.0.0',"
                " CASE WHEN n % 2 = 0 THEN 'bulk_a' ELSE 'bulk_b' END, n || '.0.0', n, 0, 0, 1, '', 'lgbm',"
                " :trained, '{}', 'sha', 10, :t FROM ("
                "  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :rows)"
                "  SELECT n FROM seq) AS numbers"
            ),
            {"trained": STALE, "t": NOW.replace(tzinfo=None), "rows": rows},
        )
        conn.execute(text("INSERT INTO model_states (model_pk, model_name, status, updated_at) "
                          "SELECT id, model_name, 'registered', :t FROM model_versions"), {"t": NOW.replace(tzinfo=None)})
    statements: list[str] = []
    event.listen(registry.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    started = time.monotonic()
    result = registry.archive_stale(max_age_days=30, keep_last=5, now=NOW)
    elapsed = time.monotonic() - started

    assert len(result.archived_ids) == rows - 10
    assert len(statements) <= 12, statements
    assert elapsed < 60
    assert len(registry.history(model_name="bulk_a")) == rows // 2 - 5


@pytest.mark.postgres
def test_cleanup_sort_memory_is_raised_for_its_own_transaction_only(postgres_url, tmp_path, model):
    registry = ModelRegistry(tmp_path / "registry", postgres_url)  # the session's database, other tests' rows too
    older = add(registry, model, "work_mem", STALE)
    add(registry, model, "work_mem", STALE)
    with registry.db.engine.connect() as conn:
        default = conn.execute(text("SHOW work_mem")).scalar_one()
    seen: list[str] = []

    def before_commit(conn: Any) -> None:  # still inside the cleanup's transaction
        seen.append(conn.execute(text("SHOW work_mem")).scalar_one())

    event.listen(registry.db.engine, "commit", before_commit)
    try:
        assert older in registry.archive_stale(max_age_days=30, keep_last=1, now=NOW).archived_ids
    finally:
        event.remove(registry.db.engine, "commit", before_commit)
    assert seen == ["64MB"] and default != "64MB"
    with registry.db.engine.connect() as conn:  # the same pooled connection, back to the server's setting
        assert registry.db.engine.pool.checkedout() == 1 and registry.db.engine.pool.size() >= 1
        assert conn.execute(text("SHOW work_mem")).scalar_one() == default
    registry.close()


def test_the_sweep_deletes_the_model_file_a_crashed_purge_left_behind(registry, model, monkeypatch):
    """A purge commits, then deletes files: dying in between leaves a purged row's model file in storage."""
    old = add(registry, model, "alpha", STALE)
    registry.archive_stale(max_age_days=30, keep_last=0, now=NOW)
    size = registry.get_model_info(old).size_bytes

    def stored() -> frozenset[str]:
        state = registry.artifacts.entry_state(registry.artifacts.model_dir(old))
        return state.names if state else frozenset()

    def die(_model_id: str) -> int:
        raise KeyboardInterrupt("killed between the commit and the file deletion")

    monkeypatch.setattr(registry.artifacts, "delete_model_file", die)
    with pytest.raises(KeyboardInterrupt):
        registry.archive_stale(purge_archived_after_days=0, now=NOW + timedelta(days=1))
    monkeypatch.undo()
    assert registry.get_model_info(old).purged_at is not None
    assert stored() == {"model.pkl", "metadata.json"}

    preview = registry.sweep_orphans(dry_run=True)
    assert preview.removed == {f"{old}/model.pkl": size} and stored() == {"model.pkl", "metadata.json"}
    result = registry.sweep_orphans()

    assert result.removed == {f"{old}/model.pkl": size}
    assert stored() == {"metadata.json"}
    assert registry.sweep_orphans().removed == {}
    assert [e.event for e in registry.history(model_id=old)][-2:] == ["archived", "purged"]
