"""Evaluation series stored with a version: written at registration, read back exactly, kept through a purge."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from registry import EvaluationSeries, ModelNotFoundError, ModelRegistry
from registry.errors import InvalidMetadataError, InvalidNameError
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC
from registry.store.db import Database
from tests.registry.registry_helpers import metadata

DAYS = [date(2020, 1, 2) + timedelta(days=i) for i in range(5)]


def _series() -> dict[str, EvaluationSeries]:
    return {DAILY_IC: EvaluationSeries(dates=DAYS, values=[0.1, -0.05, math.nan, 0.02, 1 / 3]),
            CUMULATIVE_EXCESS_RETURN: EvaluationSeries(dates=DAYS, values=[0.001, 0.003, 0.002, 0.0, -0.004])}


def test_series_registered_with_a_version_read_back_exactly(registry: ModelRegistry) -> None:
    model_id = registry.register_model({"w": 1}, metadata(ic_mean=0.05), evaluation_series=_series())
    stored = registry.get_evaluation_series(model_id)
    assert stored[DAILY_IC].values == [0.1, -0.05, None, 0.02, 1 / 3]  # NaN is stored as undefined
    assert stored[DAILY_IC].dates == DAYS
    assert stored[CUMULATIVE_EXCESS_RETURN] == _series()[CUMULATIVE_EXCESS_RETURN]


def test_a_version_without_series_has_none_and_an_unknown_id_is_not_found(registry: ModelRegistry) -> None:
    model_id = registry.register_model({"w": 1}, metadata(ic_mean=0.05))
    assert registry.get_evaluation_series(model_id) == {}
    with pytest.raises(ModelNotFoundError):
        registry.get_evaluation_series("ghost_v1")


def test_series_outlive_a_purge_of_the_model_file_and_go_with_a_deletion(registry: ModelRegistry) -> None:
    old = registry.register_model({"w": 1}, metadata(ic_mean=0.01, training_date="2020-01-01"), evaluation_series=_series())
    registry.register_model({"w": 2}, metadata(ic_mean=0.02))
    now = datetime.now(UTC)
    registry.archive_stale(max_age_days=30, keep_last=0, now=now)
    registry.archive_stale(max_age_days=30, keep_last=0, purge_archived_after_days=0, now=now + timedelta(hours=1))
    assert registry.get_model_info(old).purged_at is not None
    assert registry.get_evaluation_series(old)[DAILY_IC].dates == DAYS
    registry.delete_model(old)
    rows = registry.db.run(lambda s: s.execute(text("SELECT count(*) FROM model_series")).scalar())
    assert rows == 0


@pytest.mark.parametrize("bad, error", [
    (lambda: EvaluationSeries(dates=DAYS, values=[1.0]), InvalidMetadataError),
    (lambda: EvaluationSeries(dates=DAYS[::-1], values=[1.0] * 5), InvalidMetadataError),
    (lambda: EvaluationSeries(dates=[DAYS[0]] * 2, values=[1.0] * 2), InvalidMetadataError),
])
def test_malformed_series_are_refused(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        bad()  # type: ignore[operator]


def test_a_badly_named_series_is_refused_and_nothing_is_registered(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidNameError):
        registry.register_model({"w": 1}, metadata(ic_mean=0.05), evaluation_series={"bad name!": _series()[DAILY_IC]})
    assert registry.list_models() == []


def test_migration_0008_adds_and_removes_the_series_table(tmp_path: Path, database_url: str) -> None:
    ModelRegistry(tmp_path / "reg", database_url).close()
    db = Database(database_url)
    command.downgrade(db.alembic_config(), "0007")
    assert "model_series" not in inspect(db.engine).get_table_names()
    db.upgrade()
    assert "model_series" in inspect(db.engine).get_table_names()
    db.dispose()
