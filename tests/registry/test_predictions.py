"""The predictions store on SQLite and PostgreSQL: whole runs in one transaction, idempotent, explicit recompute."""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from registry import ModelNotFoundError, ModelRegistry, QlibModelRepository, ScoredDay
from tests.registry.registry_helpers import metadata

D1, D2, D3 = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)


def day(model_id: str, when: date, scores: dict[str, float]) -> ScoredDay:
    return ScoredDay(model_id, when, list(scores.items()))


@pytest.fixture
def model_id(registry: ModelRegistry, model: Any) -> str:
    return registry.register_model(model, metadata(ic_mean=0.1))


def test_a_written_day_reads_back_best_score_first_with_its_data_version_and_flow_run(
    registry: ModelRegistry, model_id: str
) -> None:
    result = registry.write_predictions(
        "lgbm_alpha158", [day(model_id, D1, {"SH600000": 0.1, "SH600001": 0.3, "SZ000001": -0.2})],
        data_version="2024-03-04/abc", flow_run_id="fr-1",
    )
    assert (result.written_days, result.written_rows, result.skipped_days) == ([D1], 3, [])
    rows = registry.predictions("lgbm_alpha158", D1)
    assert [r.instrument for r in rows] == ["SH600001", "SH600000", "SZ000001"]
    assert rows[0].score == pytest.approx(0.3, abs=0) and rows[0].model_id == model_id
    assert {(r.data_version, r.flow_run_id, r.trading_date) for r in rows} == {("2024-03-04/abc", "fr-1", D1)}
    assert rows[0].created_at.tzinfo is not None


def test_scores_keep_double_precision(registry: ModelRegistry, model_id: str) -> None:
    value = 0.123456789012345678
    registry.write_predictions("lgbm_alpha158", [day(model_id, D1, {"A": value})], data_version="v")
    assert registry.predictions("lgbm_alpha158", D1)[0].score == value


def test_rewriting_the_same_days_replaces_nothing_and_duplicates_nothing(registry: ModelRegistry, model_id: str) -> None:
    registry.write_predictions("lgbm_alpha158", [day(model_id, D1, {"A": 1.0, "B": 2.0})], data_version="v1")
    again = registry.write_predictions(
        "lgbm_alpha158", [day(model_id, D1, {"A": 9.0, "B": 9.0}), day(model_id, D2, {"A": 3.0})], data_version="v2"
    )
    assert (again.skipped_days, again.written_days, again.written_rows) == ([D1], [D2], 1)
    rows = registry.predictions("lgbm_alpha158", (D1, D2))
    assert [(r.trading_date, r.instrument, r.score, r.data_version) for r in rows] == [
        (D1, "B", 2.0, "v1"), (D1, "A", 1.0, "v1"), (D2, "A", 3.0, "v2"),
    ]


def test_a_failing_run_writes_none_of_its_days(registry: ModelRegistry, model_id: str) -> None:
    with pytest.raises(ModelNotFoundError, match="not a version of 'lgbm_alpha158'"):
        registry.write_predictions(
            "lgbm_alpha158", [day(model_id, D1, {"A": 1.0}), day("other_v1.0.0", D2, {"A": 1.0})], data_version="v"
        )
    assert registry.predictions("lgbm_alpha158", (D1, D3)) == []
    assert registry.last_prediction_date("lgbm_alpha158") is None


def test_a_recompute_replaces_its_range_only_and_is_recorded(registry: ModelRegistry, model_id: str) -> None:
    registry.write_predictions(
        "lgbm_alpha158", [day(model_id, d, {"A": 1.0, "B": 1.0}) for d in (D1, D2, D3)], data_version="v1"
    )
    result = registry.write_predictions(
        "lgbm_alpha158", [day(model_id, D2, {"A": 5.0})], data_version="v2", recompute=(D2, D2),
        actor="alice", reason="corrected close prices", flow_run_id="fr-9",
    )
    assert (result.replaced_rows, result.written_rows) == (2, 1)
    by_day = {d: [(r.instrument, r.score) for r in registry.predictions("lgbm_alpha158", d)] for d in (D1, D2, D3)}
    assert by_day == {D1: [("A", 1.0), ("B", 1.0)], D2: [("A", 5.0)], D3: [("A", 1.0), ("B", 1.0)]}
    event = registry.history("lgbm_alpha158")[-1]
    assert (event.event, event.actor, event.flow_run_id) == ("predictions_recomputed", "alice", "fr-9")
    assert event.reason is not None and "2024-03-05..2024-03-05" in event.reason and "2 scores replaced by 1" in event.reason
    assert "corrected close prices" in event.reason


def test_the_default_read_is_the_last_stored_day(registry: ModelRegistry, model_id: str) -> None:
    assert registry.predictions("lgbm_alpha158") == []
    registry.write_predictions("lgbm_alpha158", [day(model_id, D1, {"A": 1.0}), day(model_id, D3, {"B": 2.0})],
                               data_version="v")
    assert registry.last_prediction_date("lgbm_alpha158") == D3
    assert [(r.trading_date, r.instrument) for r in registry.predictions("lgbm_alpha158")] == [(D3, "B")]


def test_a_recompute_event_does_not_change_what_was_production(registry: ModelRegistry, model_id: str) -> None:
    from datetime import UTC, datetime

    registry.set_production_model(model_id)
    registry.write_predictions("lgbm_alpha158", [day(model_id, D1, {"A": 1.0})], data_version="v", recompute=(D1, D1))
    assert registry.production_at("lgbm_alpha158", datetime.now(UTC)) == model_id


def test_concurrent_runs_of_one_name_store_each_day_once(registry: ModelRegistry, model: Any) -> None:
    a = registry.register_model(model, metadata())
    b = registry.register_model(model, metadata())
    errors: list[BaseException] = []

    def run(model_id: str) -> None:
        try:
            registry.write_predictions("lgbm_alpha158", [day(model_id, d, {"A": 1.0, "B": 2.0}) for d in (D1, D2, D3)],
                                       data_version="v")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = registry.predictions("lgbm_alpha158", (D1, D3))
    assert len(rows) == 6 and len({r.model_id for r in rows if r.trading_date == D2}) == 1


def test_the_async_port_reads_the_same_predictions(registry: ModelRegistry, model_id: str) -> None:
    registry.write_predictions("lgbm_alpha158", [day(model_id, D1, {"A": 1.0})], data_version="v")
    repo = QlibModelRepository(registry)
    rows = asyncio.run(repo.predictions("lgbm_alpha158", (D1, D1)))
    assert [(r.instrument, r.model_id) for r in rows] == [("A", model_id)]


def test_the_table_has_the_documented_primary_key(registry: ModelRegistry) -> None:
    with registry.db.engine.connect() as conn:
        if registry.db.dialect == "postgresql":
            cols = conn.execute(text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'predictions'::regclass AND i.indisprimary"
            )).scalars().all()
        else:
            cols = [r[1] for r in conn.execute(text("PRAGMA table_info(predictions)")) if r[5]]
    assert sorted(cols) == ["instrument", "model_id", "trading_date"]
