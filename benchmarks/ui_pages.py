"""`qmp ui`'s pages on PostgreSQL with 200 names x 50 versions (10,000 versions), beside MLflow's registry search.

    .venv/bin/python benchmarks/ui_pages.py                    # 200 names x 50 versions, 200 samples per page
    .venv/bin/python benchmarks/ui_pages.py --names 50 --versions 20 --samples 50

Both registries are bulk-loaded like the registry benchmark (see _bulk.py); ours also gets a promotion event
per name, an approval request (a pending row of the approvals table, as the retrain flow records it) on every
tenth name, the two evaluation series (250 trading days) of every version, 250 days of live metrics of every
production model (the live IC of every tenth name far below its expectation: a drift badge; on every tenth
name from the sixth on, the production model was promoted 5 live days ago and the older days are an earlier
model's, so the overview reads those names' days whole), and a rolling replay
of 20 windows on every tenth name, under the replay's derived name (`registry.replays`, 400 more versions at 200
names).
Each page is requested in-process through the ASGI app (FastAPI's TestClient, no network); the time
is the app's own `Server-Timing` (from the request entering the app to its response), so it is server-side.
The SQL statements of each page are counted at the driver (psycopg's cursor), and their number is compared
with the same pages on a registry of 20 names x 5 versions (it must not grow with names and versions).
MLflow's overlapping calls are timed through MlflowClient on the same PostgreSQL server:
`search_registered_models` (the overview's list of names), `search_model_versions` for one name (the model
page's list) and `get_model_version` (the version page).
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _bulk
import psycopg
from _bench import fmt, libpq_url, machine, scratch_databases, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry import ModelRegistry
from registry.replays import replay_model_name
from tests.ui.statements import counted_statements

TARGETS_MS = {"overview": 150.0, "model": 150.0, "version": 100.0}
DAYS = 250
EVERY = 10  # an approval request and a replay on every tenth name
REPLAY_ID = "0123456789ab"
REPLAY_WINDOWS = 20


def add_history_and_series(url: str, names: list[str], per_name: int) -> None:
    """A promotion per name, an approval request on every tenth name, two 250-day series per version."""
    with psycopg.connect(url) as conn:
        conn.execute("""
            INSERT INTO model_events (model_id, model_name, event, from_status, to_status, actor, reason, flow_run_id, created_at)
            SELECT v.model_id, v.model_name, 'promoted', 'candidate', 'production', 'bench', 'beats production',
                   gen_random_uuid()::text, v.created_at + interval '1 minute'
            FROM model_versions v JOIN model_states s ON s.model_pk = v.id WHERE s.status = 'production'""")
        # The newest version of every tenth name awaits approval: the request's row (what the person is shown),
        # the model's awaiting flag and the history event, as `registry.approvals.Approvals.request` writes them.
        conn.execute("""
            INSERT INTO approvals (model_id, model_name, flow_run_id, state, requested_at, expires_at,
                                   production_model_id, comparison, forced)
            SELECT v.model_id, v.model_name, gen_random_uuid()::text, 'pending', now(), now() + interval '1 day',
                   p.model_id, json_build_object('candidate', v.metrics, 'production', p.metrics,
                       'reasons', json_build_array('approval mode is manual: a person must approve'),
                       'policy', json_build_object('primary_metric', 'ic_mean', 'approval', 'manual')), false
            FROM model_versions v
            LEFT JOIN (model_versions p JOIN model_states ps ON ps.model_pk = p.id AND ps.status = 'production')
                   ON p.model_name = v.model_name
            WHERE v.v_minor + 1 = %s AND v.model_name = ANY(%s)""", (per_name, names[::EVERY]))
        conn.execute("""
            UPDATE model_states s SET approval_requested_at = a.requested_at
            FROM approvals a JOIN model_versions v ON v.model_id = a.model_id WHERE s.model_pk = v.id""")
        conn.execute("""
            INSERT INTO model_events (model_id, model_name, event, from_status, to_status, actor, reason, flow_run_id, created_at)
            SELECT a.model_id, a.model_name, 'approval_requested', s.status, s.status, 'retrain-flow',
                   'approval mode is manual: a person must approve', a.flow_run_id, a.requested_at
            FROM approvals a JOIN model_versions v ON v.model_id = a.model_id JOIN model_states s ON s.model_pk = v.id""")
        conn.execute(f"""
            WITH days AS (SELECT array_agg(to_char(date '2020-01-01' + d, 'YYYY-MM-DD') ORDER BY d) AS dates
                          FROM generate_series(0, {DAYS - 1}) AS d)
            INSERT INTO model_series (model_pk, name, points)
            SELECT v.id, s.name, json_build_object('dates', days.dates, 'values',
                   (SELECT array_agg(round((sin(v.id + d * s.k) * 0.05)::numeric, 6) ORDER BY d)
                    FROM generate_series(0, {DAYS - 1}) AS d))
            FROM model_versions v, days, (VALUES ('daily_ic', 1), ('cum_excess_return', 2)) AS s(name, k)""")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def add_live_metrics(url: str, names: list[str]) -> None:
    """DAYS live days of every production model, as the predict flow's live step stores them; every tenth
    name's live IC lies far below its evaluation's daily IC (a drifted verdict on the overview); on every tenth
    name from the sixth on, all but the newest 5 days were scored from an earlier model's predictions."""
    with psycopg.connect(url) as conn:
        conn.execute(f"""
            INSERT INTO live_metrics (model_name, trading_date, model_id, ic, rank_ic, instruments, signal_return,
                                      top_k, data_version, computed_at, flow_run_id)
            SELECT v.model_name, date '2021-01-04' + d,
                   CASE WHEN v.model_name = ANY(%s) AND d < {DAYS - 5} THEN v.model_name || '_v0.9.0' ELSE v.model_id END,
                   sin(v.id + d) * 0.05 - CASE WHEN v.model_name = ANY(%s) THEN 0.2 ELSE 0 END,
                   sin(v.id + d) * 0.04, 300, sin(d) * 0.001, 50, '2021-12-31/bench', now(), NULL
            FROM model_versions v JOIN model_states s ON s.model_pk = v.id AND s.status = 'production',
                 generate_series(0, {DAYS - 1}) AS d""", (names[5::EVERY], names[::EVERY]))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def add_replays(url: str, names: list[str], windows: int) -> None:
    """A rolling replay of every tenth name: `windows` versions of its derived name, `registered`, versions
    1.0.0, 2.0.0, ... (as the rolling flow registers them), with the metrics of the name's first versions."""
    bases = names[::EVERY]
    replays = [replay_model_name(name, REPLAY_ID) for name in bases]
    columns = ", ".join(_bulk.VERSION_COLUMNS)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO model_names (name, registrations, created_at) SELECT unnest(%s::text[]), %s, now()",
                     (replays, windows))
        conn.execute(f"""
            INSERT INTO model_versions ({columns})
            SELECT (SELECT max(id) FROM model_versions) + row_number() OVER (ORDER BY v.id),
                   r.replay || '_v' || (v.v_minor + 1) || '.0.0', r.replay, (v.v_minor + 1) || '.0.0', v.v_minor + 1, 0,
                   0, 1, '', v.model_type, v.training_date, v.experiment_name, v.qlib_recorder_id, NULL, NULL,
                   v.hyperparameters, v.dataset_info, v.artifact_sha256, v.artifact_size,
                   now() - interval '1 day' + v.v_minor * interval '1 second', v.metrics,
                   json_build_object('source', 'replay', 'replay_id', %(rid)s::text, 'replay_of', r.base,
                                     'window_index', (v.v_minor + 1)::text)
            FROM model_versions v JOIN unnest(%(bases)s::text[], %(replays)s::text[]) AS r(base, replay)
                 ON v.model_name = r.base
            WHERE v.v_minor < %(windows)s""", {"rid": REPLAY_ID, "bases": bases, "replays": replays, "windows": windows})
        conn.execute("""
            INSERT INTO model_states (model_pk, model_name, status, updated_at)
            SELECT id, model_name, 'registered', created_at FROM model_versions WHERE model_name = ANY(%s)""", (replays,))
        conn.execute("""
            INSERT INTO model_metrics (model_pk, name, value)
            SELECT w.id, m.name, m.value
            FROM model_versions w JOIN unnest(%s::text[], %s::text[]) AS r(base, replay) ON w.model_name = r.replay
            JOIN model_versions v ON v.model_name = r.base AND v.v_minor + 1 = w.v_major
            JOIN model_metrics m ON m.model_pk = v.id""", (bases, replays))
        conn.execute("""
            INSERT INTO model_events (model_id, model_name, event, from_status, to_status, actor, reason, created_at)
            SELECT model_id, model_name, 'registered', NULL, 'registered', 'rolling-flow', 'replay ' || %s::text, created_at
            FROM model_versions WHERE model_name = ANY(%s)""", (REPLAY_ID, replays))
        conn.execute("SELECT setval(pg_get_serial_sequence('model_versions', 'id'), (SELECT max(id) FROM model_versions))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def page_paths(names: list[str], per_name: int, rng: random.Random) -> dict[str, Callable[[], str]]:
    def model() -> str:
        return f"/models/{rng.choice(names)}"

    def version() -> str:
        return f"/models/{rng.choice(names)}/versions/1.{rng.randrange(per_name)}.0"

    def replay() -> str:
        return f"/models/{rng.choice(names[::EVERY])}?replay_id={REPLAY_ID}"

    return {"overview": lambda: "/", "model": model, "version": version,
            "model (filtered)": lambda: f"/models/{rng.choice(names)}?status=candidate&min=ic_mean:0.03",
            "model (a replay)": replay,
            "compare": lambda: (lambda n: f"/compare?a={n}_v1.0.0&b={n}_v1.{per_name - 1}.0")(rng.choice(names)),
            "approvals": lambda: "/approvals"}


def server_ms(response: Any) -> float:
    match = re.search(r"dur=([0-9.]+)", response.headers["server-timing"])
    assert match is not None and response.status_code == 200, (response.status_code, response.text[:300])
    return float(match.group(1))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_pages(url: str, workdir: Path, names: list[str], per_name: int, samples: int) -> dict[str, dict[str, float]]:
    from fastapi.testclient import TestClient

    from deployments.ui.app import create_app
    from deployments.ui.settings import UISettings

    registry = ModelRegistry(workdir / "registry", url)
    # Configured as `qmp ui` serves it (deployments/ui/server.py).
    app = create_app(UISettings(_env_file=None, token=None, allowed_hosts=["testserver"]), registry=registry,  # type: ignore[call-arg]
                     freeze_startup_objects=True)
    rng = random.Random(7)
    results: dict[str, dict[str, float]] = {}
    with TestClient(app) as client:
        paths = page_paths(names, per_name, rng)
        for label, path in paths.items():
            for _ in range(5):
                client.get(path())  # warm-up: connections, statement caches, templates
            with counted_statements(registry) as sent:
                client.get(path())
            times = [server_ms(client.get(path())) for _ in range(samples)]
            results[label] = {"p50": statistics.median(times), "p95": percentile(times, 0.95),
                              "statements": float(len(sent))}
    registry.close()
    return results


def measure_mlflow(url: str, names: list[str], per_name: int, samples: int) -> dict[str, dict[str, float]]:
    import time

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    rng = random.Random(7)
    calls = {
        "overview": lambda: client.search_registered_models(max_results=1000),
        "model": lambda: client.search_model_versions(f"name = '{rng.choice(names)}'", max_results=100),
        "version": lambda: client.get_model_version(rng.choice(names), str(rng.randrange(1, per_name + 1))),
    }
    results = {}
    for label, call in calls.items():
        for _ in range(5):
            call()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1e3)
        results[label] = {"p50": statistics.median(times), "p95": percentile(times, 0.95)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    names = [f"model_{i:04d}" for i in range(args.names)]
    small_names = [f"small_{i:02d}" for i in range(20)]
    print(machine())
    with scratch_databases("qmp_ui_bench", "qmp_ui_small", "mlflow_ui_bench") as (ours, small, mlflow_url), \
            tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for url, label in ((ours, "big"), (small, "small")):
            ModelRegistry(workdir / label, url).close()  # the schema
        _bulk.load_ours(libpq_url(ours), names, args.versions)
        add_history_and_series(libpq_url(ours), names, args.versions)
        add_live_metrics(libpq_url(ours), names)
        add_replays(libpq_url(ours), names, REPLAY_WINDOWS)
        _bulk.load_ours(libpq_url(small), small_names, 5)
        add_history_and_series(libpq_url(small), small_names, 5)
        add_live_metrics(libpq_url(small), small_names)
        add_replays(libpq_url(small), small_names, 5)
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url).search_registered_models(max_results=1)
        _bulk.load_mlflow(libpq_url(mlflow_url), names, args.versions)

        big = measure_pages(ours, workdir / "big", names, args.versions, args.samples)
        few = measure_pages(small, workdir / "small", small_names, 5, 20)
        theirs = measure_mlflow(mlflow_url, names, args.versions, args.samples)
    rows = []
    for label, figures in big.items():
        key = label if label in TARGETS_MS else None
        mlflow = theirs.get(label) if key else None
        rows.append([label, fmt(figures["p50"]), fmt(figures["p95"]),
                     fmt(TARGETS_MS[key], 0) if key else "—", f"{figures['statements']:.0f}",
                     f"{few[label]['statements']:.0f}", fmt(mlflow["p50"]) if mlflow else "—",
                     fmt(mlflow["p95"]) if mlflow else "—"])
    print(f"\n{args.names} names x {args.versions} versions ({args.names * args.versions:,} versions), "
          f"{args.samples} requests per page, server-side ms")
    print(table(["page", "p50 ms", "p95 ms", "target p95", "statements", "statements at 20x5", "MLflow p50",
                 "MLflow p95"], rows, numeric={1, 2, 3, 4, 5, 6, 7}))


if __name__ == "__main__":
    main()
