"""Qlib's dataset cache through our feature layer: never stale, shared safely, off with one line without Redis.

These tests use the real Redis at 127.0.0.1:6379 (a missing Redis fails them in CI, as PostgreSQL does).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from registry.settings import Settings, load_settings
from tasks.core.data.qlib_binary import read_calendar
from tasks.core.data.synthetic import synthesize
from tasks.core.features.cache import MANIFEST, qlib_cache_dir
from tasks.core.features.raw import (
    FeatureStore,
    compute_raw_features,
    handler_from_features,
    load_raw_features,
)
from tasks.core.qlib import session as qlib_session
from tests.conftest import IN_CI
from tests.qlib.feature_data import append_days, rewrite_value, write_prefix

pytestmark = pytest.mark.qlib
REDIS_URL = os.environ.get("QMP_TEST_REDIS", "redis://127.0.0.1:6379/15")
HERE = Path(__file__).resolve().parent
# A handler with a few of Alpha158's expressions (rolling windows of several kinds, a label two days ahead):
# the cache's rules are the same as for the full Alpha158, at a fraction of the test time.
FEATURES = {
    "KMID": "($close-$open)/$open", "ROC1": "Ref($close, 1)/$close", "MA5": "Mean($close, 5)/$close",
    "STD10": "Std($close, 10)/$close", "CORR10": "Corr($close, Log($volume+1), 10)",
    "BETA10": "Slope($close, 10)/$close", "RSQR10": "Rsquare($close, 10)", "MAX20": "Max($high, 20)/$close",
    "QTLU10": "Quantile($close, 10, 0.8)/$close", "RANK10": "Rank($close, 10)",
}
HANDLER: dict[str, Any] = {
    "class": "DataHandlerLP",
    "module_path": "qlib.data.dataset.handler",
    "kwargs": {
        "instruments": "csi300", "start_time": "2021-03-01", "end_time": None,
        "data_loader": {"class": "QlibDataLoader", "module_path": "qlib.data.dataset.loader", "kwargs": {"config": {
            "feature": [list(FEATURES.values()), list(FEATURES)],
            "label": [["Ref($close, -2)/Ref($close, -1) - 1"], ["LABEL0"]],
        }}},
        "learn_processors": [{"class": "DropnaLabel"}, {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}}],
    },
}
SPAN = ("2021-03-01", None)
@pytest.fixture(scope="module")
def redis_url() -> str:
    from tasks.core.features.cache import redis_reachable

    if not redis_reachable(REDIS_URL):
        message = f"Redis is required for the feature-cache tests but unreachable at {REDIS_URL}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture(scope="module")
def full_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Complete synthetic data: 20 stocks over 2021 (the tests work on prefixes of it)."""
    return synthesize(tmp_path_factory.mktemp("full") / "data", instruments=20, start="2021-01-01",
                      end="2021-10-31", seed=5).out


@pytest.fixture
def data(full_data: Path, tmp_path: Path) -> Path:
    """The full data without its last 7 trading days."""
    out = tmp_path / "data"
    write_prefix(full_data, out, drop_days=7)
    return out


def _settings(tmp_path: Path, redis_url: str, cache: str = "qlib") -> Settings:
    return load_settings(registry_dir=tmp_path / "registry", feature_cache=cache, redis_url=redis_url)


@pytest.fixture
def cached(tmp_path: Path, redis_url: str) -> Settings:
    return _settings(tmp_path, redis_url)


@pytest.fixture
def uncached(tmp_path: Path, redis_url: str) -> Settings:
    return _settings(tmp_path, redis_url, cache="off")


@pytest.fixture(autouse=True)
def _fresh_qlib_session() -> Iterator[None]:
    """Each test initialises Qlib itself (the data directory and the cache setting differ between tests)."""
    qlib_session._current_key = None
    yield
    qlib_session._current_key = None


def _features(data: Path, settings: Settings) -> pd.DataFrame:
    qlib_session.init_qlib(data, settings=settings)
    return compute_raw_features(HANDLER, SPAN)


def _cache_files(data: Path, settings: Settings) -> list[Path]:
    return sorted(p for p in qlib_cache_dir(data, settings).iterdir() if p.suffix == "" and p.is_file())


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-12)


def test_cache_extends_with_appended_days_and_equals_uncached(
    data: Path, full_data: Path, cached: Settings, uncached: Settings
) -> None:
    first = _features(data, cached)
    files = _cache_files(data, cached)
    assert len(files) == 2  # one per field group: features and label
    _assert_same(first, _features(data, uncached))
    inodes = [f.stat().st_ino for f in files]

    append_days(full_data, data)
    after = _features(data, cached)
    assert after.index.get_level_values("datetime").max() == read_calendar(full_data)[-1]
    assert after.index.get_level_values("datetime").max() > first.index.get_level_values("datetime").max()
    _assert_same(after, _features(data, uncached))
    # Extended in place by Qlib's update, not rebuilt.
    assert [f.stat().st_ino for f in _cache_files(data, cached)] == inodes
    assert str(qlib_session.data_version(data)) in (qlib_cache_dir(data, cached) / MANIFEST).read_text()


def test_rewritten_past_value_is_not_served_from_the_cache(
    data: Path, cached: Settings, uncached: Settings
) -> None:
    before = _features(data, cached)
    day = read_calendar(data).get_loc(pd.Timestamp("2021-05-06"))
    symbol = before.index.get_level_values("instrument")[0]
    rewrite_value(data, symbol, "close", day, 1.05)

    after = _features(data, cached)
    _assert_same(after, _features(data, uncached))
    changed = after.loc[(pd.Timestamp("2021-05-06"), symbol), ("feature", "KMID")]
    assert changed != before.loc[(pd.Timestamp("2021-05-06"), symbol), ("feature", "KMID")]


def test_unreachable_redis_says_so_in_one_line_and_runs_uncached(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, "redis://127.0.0.1:1/0")
    qlib_session._warned_redis.discard(settings.redis_url)
    qlib_session._redis_down_until.pop(settings.redis_url, None)
    with caplog.at_level(logging.WARNING):
        qlib_session.init_qlib(data, settings=settings)
    ours = [r for r in caplog.records if "feature cache off" in r.getMessage()]
    assert len(ours) == 1 and "redis://127.0.0.1:1/0" in ours[0].getMessage()
    assert not qlib_session.qlib_cache_enabled()
    assert not any("redis connection failed" in r.getMessage() for r in caplog.records)
    assert not compute_raw_features(HANDLER, SPAN).empty
    assert not qlib_cache_dir(data, settings).exists()


@pytest.mark.slow  # trains in two processes
def test_two_processes_training_at_once_share_the_cache(
    data: Path, cached: Settings, uncached: Settings, tmp_path: Path
) -> None:
    env = {**os.environ, "QMP_FEATURE_CACHE": "qlib", "QMP_REDIS_URL": cached.redis_url}
    outputs = [tmp_path / f"worker{i}.pkl" for i in range(2)]
    handler = tmp_path / "handler.json"
    handler.write_text(json.dumps(HANDLER))
    workers = [
        subprocess.Popen([sys.executable, str(HERE / "feature_cache_worker.py"), str(data), model, str(handler),
                          str(out)],
                         env={**env, "QMP_REGISTRY_DIR": str(tmp_path / f"registry-{model}")},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for model, out in zip(("lightgbm", "linear"), outputs, strict=True)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output.decode()[-3000:]
    expected = _features(data, uncached)
    for out in outputs:
        with out.open("rb") as handle:
            result = pickle.load(handle)
        assert result["cache"] is True and result["model"]
        _assert_same(result["raw"], expected.loc[result["raw"].index.min()[0]:result["raw"].index.max()[0]])
    assert len(_cache_files(data, cached)) == 2


def test_local_store_builds_once_per_data_version(data: Path, full_data: Path, uncached: Settings,
                                                  tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store")
    raw = load_raw_features(HANDLER, SPAN, provider_uri=data, settings=uncached, store=store)
    _assert_same(raw, _features(data, uncached))
    built = sorted(store.root.glob("*.pkl"))
    assert len(built) == 1
    built_at = built[0].stat().st_mtime_ns
    window = load_raw_features(HANDLER, ("2021-04-01", "2021-06-30"), provider_uri=data, settings=uncached,
                               store=store)
    assert sorted(store.root.glob("*.pkl")) == built and built[0].stat().st_mtime_ns == built_at
    _assert_same(window, raw.loc[pd.Timestamp("2021-04-01"):pd.Timestamp("2021-06-30")])

    append_days(full_data, data)
    newer = load_raw_features(HANDLER, SPAN, provider_uri=data, settings=uncached, store=store)
    assert newer.index.get_level_values("datetime").max() == read_calendar(full_data)[-1]
    assert [p.name for p in store.root.glob("*.pkl")] != [p.name for p in built]
    assert len(list(store.root.glob("*.pkl"))) == 1  # the older version's file is gone


def test_handler_from_stored_features_equals_a_handler_built_directly(data: Path, uncached: Settings,
                                                                      tmp_path: Path) -> None:
    from qlib.utils import init_instance_by_config

    window = {**HANDLER, "kwargs": {**HANDLER["kwargs"], "start_time": "2021-04-01", "end_time": "2021-08-31"}}
    raw = load_raw_features(HANDLER, SPAN, provider_uri=data, settings=uncached,
                            store=FeatureStore(tmp_path / "store"))
    from_store = handler_from_features(window, raw)
    direct = init_instance_by_config(window)
    for key in ("raw", "infer", "learn"):
        _assert_same(from_store.fetch(data_key=key), direct.fetch(data_key=key))


def test_cleanup_reports_and_deletes_the_feature_cache(data: Path, cached: Settings) -> None:
    from typer.testing import CliRunner

    from deployments.cli import app
    from deployments.cli.cleanup import _size

    _features(data, cached)
    cache = qlib_cache_dir(data, cached)
    size = sum(p.stat().st_size for p in cache.iterdir())
    runner = CliRunner()
    env = {"QMP_PROVIDER_URI": str(data), "QMP_FEATURE_CACHE": "qlib"}
    dry = runner.invoke(app, ["cleanup", "--feature-cache", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would free" in dry.output and cache.exists()
    done = runner.invoke(app, ["cleanup", "--feature-cache"], env=env)
    assert done.exit_code == 0, done.output
    assert f"freed {_size(size)}" in done.output
    assert not cache.exists()
