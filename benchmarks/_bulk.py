"""Bulk-load the prefix of versions straight into our tables and MLflow's (the public APIs time the rest).

Both registries get the same versions: version i of a name has ic_mean in [0, 0.06), the status
`candidate` on every third version and `registered` otherwise, one `production` version in the
middle, training dates 60 days and more in the past (so all are stale for a 30-day cleanup), 18
metrics and 3 tags on ours, and on MLflow's the tags `status`, `ic_mean` and `quality`
(`good` exactly when ic_mean >= 0.03, so a tag filter can stand in for our numeric one).
PostgreSQL is loaded server-side (INSERT ... SELECT over generate_series), SQLite with executemany,
in one transaction each; both compute the same values (ic_mean(i) is exact in both).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg

METRICS = (
    "ic", "ic_mean", "ic_std", "icir", "rank_ic", "rank_ic_std", "rank_icir",
    "annualized_return", "information_ratio", "sharpe_ratio", "max_drawdown",
    "annualized_return_without_cost", "information_ratio_without_cost", "max_drawdown_without_cost",
    "benchmark_annualized_return", "win_rate", "turnover", "test_days",
)  # fmt: skip
TAGS = {"source": "retrain", "config": "workflow_config_lightgbm_Alpha158.yaml", "universe": "csi300"}
HYPERPARAMETERS = {
    "loss": "mse", "colsample_bytree": 0.8879, "learning_rate": 0.2, "subsample": 0.8789, "lambda_l1": 205.6999,
    "lambda_l2": 580.9768, "max_depth": 8, "num_leaves": 210, "num_threads": 20, "model_type": "LGBModel",
}  # fmt: skip
DATASET_INFO = {
    "instruments": "csi300", "start_time": "2008-01-01", "end_time": "2020-08-01", "label": "Ref($close, -2) / Ref($close, -1) - 1",
    "handler": "Alpha158", "segments": {"train": ["2008-01-01", "2014-12-31"], "valid": ["2015-01-01", "2016-12-31"],
                                        "test": ["2017-01-01", "2020-08-01"]},
}  # fmt: skip
IC_THRESHOLD = 0.03
VERSION_COLUMNS = (
    "id", "model_id", "model_name", "version", "v_major", "v_minor", "v_patch", "v_release", "v_label",
    "model_type", "training_date", "experiment_name", "qlib_recorder_id", "flow_run_id", "description",
    "hyperparameters", "dataset_info", "artifact_sha256", "artifact_size", "created_at", "metrics", "tags",
)  # fmt: skip

STATE_COLUMNS = "model_pk, model_name, status, updated_at"


def ic_mean(i: int) -> float:
    return (i * 7919 % 1000) * 6e-5


IC_SQL = "((i * 7919) % 1000) * 6e-5::float8"
METRIC_SQL = f"CASE WHEN m.name IN ('ic', 'ic_mean') THEN {IC_SQL} ELSE {IC_SQL} * m.k / 7 END"


def status(i: int, n: int) -> str:
    if i == n // 2:
        return "production"
    return "candidate" if i % 3 == 0 else "registered"


def version(i: int) -> str:
    """Our registry's automatic versions: 1.0.0, 1.1.0, 1.2.0, ..."""
    return f"1.{i - 1}.0"


def _rows(names: list[str], n: int, now: datetime) -> Iterator[tuple[int, str, int]]:
    pk = 0
    for name in names:
        for i in range(1, n + 1):
            pk += 1
            yield pk, name, i


def load_ours(url_or_path: str, names: list[str], n: int, *, sqlite: bool = False) -> int:
    """Insert `n` versions of each name into our schema; returns the number of rows."""
    now = datetime.now(UTC)
    today = now.date()
    hyper, dataset, tags = json.dumps(HYPERPARAMETERS), json.dumps(DATASET_INFO), json.dumps(TAGS)

    def metrics_of(i: int) -> dict[str, float]:
        base = ic_mean(i)
        return {metric: base if metric in ("ic", "ic_mean") else base * (k + 1) / 7 for k, metric in enumerate(METRICS)}

    def registered_at(i: int) -> object:
        created = now - timedelta(days=60) - timedelta(seconds=n - i)
        return created.replace(tzinfo=None).isoformat(sep=" ") if sqlite else created

    def version_rows() -> Iterator[tuple[object, ...]]:
        for pk, name, i in _rows(names, n, now):
            trained: date = today - timedelta(days=60 + (n - i) // 100)
            when = registered_at(i)
            yield (
                pk, f"{name}_v{version(i)}", name, version(i), 1, i - 1, 0, 1, "", "LGBModel",
                trained.isoformat() if sqlite else trained, name, f"{i:032x}", None, None, hyper, dataset,
                "0" * 64, 1024, when, json.dumps(metrics_of(i)), tags,
            )

    def state_rows() -> Iterator[tuple[object, ...]]:
        for pk, name, i in _rows(names, n, now):
            yield pk, name, status(i, n), registered_at(i)

    def metric_rows() -> Iterator[tuple[object, ...]]:
        for pk, _name, i in _rows(names, n, now):
            for metric, value in metrics_of(i).items():
                yield pk, metric, value

    def tag_rows() -> Iterator[tuple[object, ...]]:
        for pk, _name, _i in _rows(names, n, now):
            for key, value in TAGS.items():
                yield pk, key, value

    name_rows = [(name, n, now.replace(tzinfo=None).isoformat(sep=" ") if sqlite else now) for name in names]
    columns = ", ".join(VERSION_COLUMNS)
    if sqlite:
        with sqlite3.connect(url_or_path) as conn:
            conn.executemany("INSERT INTO model_names (name, registrations, created_at) VALUES (?, ?, ?)", name_rows)
            conn.executemany(
                f"INSERT INTO model_versions ({columns}) VALUES ({', '.join('?' * len(VERSION_COLUMNS))})", version_rows()
            )
            conn.executemany(f"INSERT INTO model_states ({STATE_COLUMNS}) VALUES (?, ?, ?, ?)", state_rows())
            conn.executemany("INSERT INTO model_metrics (model_pk, name, value) VALUES (?, ?, ?)", metric_rows())
            conn.executemany("INSERT INTO model_tags (model_pk, key, value) VALUES (?, ?, ?)", tag_rows())
        with sqlite3.connect(url_or_path) as conn:
            conn.execute("ANALYZE")
        return len(names) * n
    metric_names = "ARRAY[" + ", ".join(f"'{m}'" for m in METRICS) + "]"
    with psycopg.connect(url_or_path) as conn:
        conn.execute("INSERT INTO model_names (name, registrations, created_at) SELECT unnest(%s::text[]), %s, now()",
                     (names, n))
        conn.execute(f"""
            INSERT INTO model_versions ({columns})
            SELECT (k - 1) * %(n)s + i, nm || '_v1.' || (i - 1) || '.0', nm, '1.' || (i - 1) || '.0', 1, i - 1, 0, 1, '',
                   'LGBModel',
                   current_date - 60 - (%(n)s - i) / 100, nm, lpad(to_hex(i), 32, '0'), NULL, NULL,
                   %(hyper)s::json, %(dataset)s::json, repeat('0', 64), 1024,
                   now() - interval '60 days' - (%(n)s - i) * interval '1 second',
                   (SELECT json_object_agg(m.name, {METRIC_SQL.replace('%', '%%')}) FROM unnest({metric_names}::text[]) WITH ORDINALITY AS m(name, k)),
                   %(tags)s::json
            FROM unnest(%(names)s::text[]) WITH ORDINALITY AS names(nm, k), generate_series(1, %(n)s) AS i""",
                     {"n": n, "names": names, "hyper": hyper, "dataset": dataset, "tags": tags})
        conn.execute(f"""
            INSERT INTO model_states ({STATE_COLUMNS})
            SELECT id, model_name,
                   CASE WHEN v_minor + 1 = %(n)s / 2 THEN 'production' WHEN (v_minor + 1) %% 3 = 0 THEN 'candidate'
                        ELSE 'registered' END,
                   created_at
            FROM model_versions""", {"n": n})
        conn.execute(f"""
            INSERT INTO model_metrics (model_pk, name, value)
            SELECT v.id, m.name, {METRIC_SQL}
            FROM (SELECT id, v_minor + 1 AS i FROM model_versions) AS v,
                 unnest({metric_names}::text[]) WITH ORDINALITY AS m(name, k)""")
        conn.execute("INSERT INTO model_tags (model_pk, key, value) SELECT v.id, t.key, t.value FROM model_versions v, "
                     "unnest(%s::text[], %s::text[]) AS t(key, value)", (list(TAGS), list(TAGS.values())))
        conn.execute("SELECT setval(pg_get_serial_sequence('model_versions', 'id'), (SELECT max(id) FROM model_versions))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return len(names) * n


def load_mlflow(url: str, names: list[str], n: int) -> int:
    """Insert `n` versions of each name (with a `production` alias) into MLflow's registry tables."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO registered_models (name, creation_time, last_updated_time, workspace) "
                     "SELECT unnest(%s::text[]), %s, %s, 'default'", (names, now_ms, now_ms))
        conn.execute("""
            INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, source, status,
                                        storage_location, workspace)
            SELECT nm, i, %(now)s - (%(n)s - i) * 1000, %(now)s - (%(n)s - i) * 1000, 'None',
                   's3://bench/' || nm || '/' || i || '/model.pkl', 'READY', 's3://bench/' || nm || '/' || i || '/model.pkl',
                   'default'
            FROM unnest(%(names)s::text[]) AS nm, generate_series(1, %(n)s) AS i""", {"n": n, "names": names, "now": now_ms})
        ic = IC_SQL.replace("%", "%%")  # a literal % in a query with parameters
        conn.execute(f"""
            INSERT INTO model_version_tags (key, value, name, version, workspace)
            SELECT t.key, CASE t.key
                       WHEN 'status' THEN CASE WHEN i = %(n)s / 2 THEN 'production' WHEN i %% 3 = 0 THEN 'candidate'
                                               ELSE 'registered' END
                       WHEN 'ic_mean' THEN to_char({ic}, 'FM0.000000')
                       ELSE CASE WHEN {ic} >= %(threshold)s THEN 'good' ELSE 'poor' END END,
                   mv.name, mv.version, 'default'
            FROM (SELECT name, version AS i, version FROM model_versions) AS mv,
                 unnest(ARRAY['status', 'ic_mean', 'quality']) AS t(key)""", {"n": n, "threshold": IC_THRESHOLD})
        conn.execute("INSERT INTO registered_model_aliases (alias, version, name, workspace) "
                     "SELECT 'production', %s, unnest(%s::text[]), 'default'", (n // 2, names))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return len(names) * n


def truncate_ours(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE model_series, model_metrics, model_tags, model_events, model_states, model_versions, model_names RESTART IDENTITY")


def truncate_mlflow(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE model_version_tags, registered_model_aliases, registered_model_tags, model_versions, "
                     "registered_models")
