"""Our registry side by side with MLflow's model registry: same PostgreSQL, same machine, same run.

    .venv/bin/python benchmarks/registry_vs_mlflow.py            # 1k, 10k, 100k versions + 1,000 names x 100
    .venv/bin/python benchmarks/registry_vs_mlflow.py --quick    # 1k and 10k only

For each size the prefix of versions is bulk-loaded with COPY (see _bulk.py), then every operation
is timed through the public APIs (ModelRegistry; MlflowClient), interleaved op by op, and the
median is reported. Scratch databases are created and dropped by the script.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import _bulk
import psycopg
from _bench import PG_ADMIN_URL, fmt, libpq_url, machine, ms, race, scratch_databases, table

from registry import ModelFilter, ModelMetadata, ModelRegistry

NAME = "lgbm_alpha158"
ARTIFACT_BYTES = 1024


@dataclass
class Row:
    """One operation at one size: medians in ms (None where a side has no equivalent)."""

    size: str
    op: str
    ours_pg: float | None
    mlflow_pg: float | None
    ours_sqlite: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours_pg is None or self.mlflow_pg is None:
            return None
        return self.mlflow_pg / self.ours_pg


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


def metadata(i: int, name: str = NAME) -> ModelMetadata:
    ic = 0.01 + (i % 50) / 1000
    metrics = {m: (ic if m in ("ic", "ic_mean") else ic * (k + 1) / 7) for k, m in enumerate(_bulk.METRICS)}
    return ModelMetadata(
        model_name=name, performance_metrics=metrics, tags=_bulk.TAGS, hyperparameters=_bulk.HYPERPARAMETERS,
        dataset_info=_bulk.DATASET_INFO, model_type="LGBModel", experiment_name=name, qlib_recorder_id=f"{i:032x}",
    )  # type: ignore[arg-type]


def artifact(workdir: Path) -> Path:
    path = workdir / "model.pkl"
    path.write_bytes(os.urandom(ARTIFACT_BYTES))
    return path


def page_filter(name: str) -> ModelFilter:
    return ModelFilter(model_name=name, status="candidate", min_performance={"ic_mean": _bulk.IC_THRESHOLD}, limit=100)


def mlflow_page_filter(name: str) -> str:
    return f"name = '{name}' AND tags.status = 'candidate' AND tags.quality = 'good'"


class Sides:
    """Our registry on PostgreSQL and SQLite and MLflow's on PostgreSQL, for one size."""

    def __init__(self, ours_url: str, mlflow_url: str, workdir: Path, label: str):
        from mlflow import MlflowClient

        self.workdir = workdir / label
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.source = artifact(self.workdir)
        self.pg = ModelRegistry(self.workdir / "pg", ours_url, allowed_source_dirs=[self.workdir])
        self.sqlite = ModelRegistry(self.workdir / "sqlite", allowed_source_dirs=[self.workdir])
        self.sqlite_path = str(self.workdir / "sqlite" / "registry.db")
        self.mlflow = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
        self.mlflow.search_registered_models(max_results=1)  # creates MLflow's tables on first use
        self.ours_url = libpq_url(ours_url)
        self.mlflow_url = libpq_url(mlflow_url)

    def load(self, names: list[str], per_name: int) -> float:
        started = time.perf_counter()
        _bulk.truncate_ours(self.ours_url)
        _bulk.truncate_mlflow(self.mlflow_url)
        _bulk.load_ours(self.ours_url, names, per_name)
        _bulk.load_ours(self.sqlite_path, names, per_name, sqlite=True)
        _bulk.load_mlflow(self.mlflow_url, names, per_name)
        return time.perf_counter() - started

    def close(self) -> None:
        self.pg.close()
        self.sqlite.close()


def fsync_floor(url: str, workdir: Path, samples: int) -> list[float]:
    """Write and fsync a small file, rename it, fsync the directory, and commit one row (3 round trips)."""
    floor_dir = workdir / "floor"
    floor_dir.mkdir()
    payload = os.urandom(ARTIFACT_BYTES)
    times = []
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body text)")
        conn.commit()
        for i in range(samples):
            started = time.perf_counter()
            tmp = floor_dir / f".{i}.tmp"
            with open(tmp, "wb") as sink:
                sink.write(payload)
                sink.flush()
                os.fsync(sink.fileno())
            os.rename(tmp, floor_dir / f"{i}.pkl")
            fd = os.open(floor_dir, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            conn.execute("SELECT 1")
            conn.execute("INSERT INTO bench_floor (body) VALUES (%s)", (f"model {i}",))
            conn.commit()
            times.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    return times


def select_one(url: str, samples: int) -> list[float]:
    times = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(samples):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - started)
    return times


def run_size(sides: Sides, label: str, names: list[str], per_name: int, samples: int, results: Results) -> None:
    name = names[0]
    load_s = sides.load(names, per_name)
    print(f"[{label}] bulk-loaded {len(names) * per_name:,} versions x 3 stores in {load_s:.1f} s", flush=True)
    mlflow = sides.mlflow

    counter = {"pg": 0, "sqlite": 0}
    registered: dict[str, list[str]] = {"pg": [], "sqlite": []}

    def register(side: str, registry: ModelRegistry) -> None:
        counter[side] += 1
        registered[side].append(registry.register_model(None, metadata(counter[side], name), model_path=sides.source))

    def create_version(i: int) -> None:
        mlflow.create_model_version(
            name, source=f"s3://bench/{name}/new/{i}/model.pkl",
            tags={"status": "registered", "ic_mean": "0.020000", "quality": "poor"},
        )

    reg = race({
        "ours_pg": lambda i: register("pg", sides.pg),
        "mlflow_pg": create_version,
        "ours_sqlite": lambda i: register("sqlite", sides.sqlite),
    }, samples)
    results.rows.append(Row(label, "register a version", ms(reg["ours_pg"]), ms(reg["mlflow_pg"]), ms(reg["ours_sqlite"]),
                            "ours copies + fsyncs a 1 KiB file; MLflow writes no file"))

    prod = race({
        "ours_pg": lambda i: sides.pg.get_production_model(name),
        "mlflow_pg": lambda i: mlflow.get_model_version_by_alias(name, "production"),
        "ours_sqlite": lambda i: sides.sqlite.get_production_model(name),
    }, samples)
    results.rows.append(Row(label, "get production", ms(prod["ours_pg"]), ms(prod["mlflow_pg"]), ms(prod["ours_sqlite"]),
                            "vs get_model_version_by_alias"))

    flt, mflt = page_filter(name), mlflow_page_filter(name)
    sizes = {
        "ours": len(sides.pg.list_models(flt)),
        "mlflow": len(mlflow.search_model_versions(mflt, max_results=100)),
    }
    page = race({
        "ours_pg": lambda i: sides.pg.list_models(flt),
        "mlflow_pg": lambda i: mlflow.search_model_versions(mflt, max_results=100),
        "ours_sqlite": lambda i: sides.sqlite.list_models(flt),
    }, samples)
    results.rows.append(Row(label, "page of 100, status + ic_mean filter", ms(page["ours_pg"]), ms(page["mlflow_pg"]),
                            ms(page["ours_sqlite"]),
                            f"ours {sizes['ours']} rows (ic_mean >= {_bulk.IC_THRESHOLD}); MLflow {sizes['mlflow']} "
                            "rows (tag filter, no numeric compare)"))

    # Promotion swaps production between two freshly registered versions (they have real files to verify).
    pair = {side: registered[side][-2:] for side in registered}
    mlflow_pair = [per_name + 1, per_name + 2]
    promote = race({
        "ours_pg": lambda i: sides.pg.set_production_model(pair["pg"][i % 2]),
        "mlflow_pg": lambda i: mlflow.set_registered_model_alias(name, "production", mlflow_pair[i % 2]),
        "ours_sqlite": lambda i: sides.sqlite.set_production_model(pair["sqlite"][i % 2]),
    }, samples)
    results.rows.append(Row(label, "promote (swap production)", ms(promote["ours_pg"]), ms(promote["mlflow_pg"]),
                            ms(promote["ours_sqlite"]), "ours verifies the artifact's sha256 first"))

    floor = fsync_floor(sides.ours_url, sides.workdir, samples)
    results.extra[f"{label}: fsync floor ms"] = ms(floor)
    results.rows.append(Row(label, "floor: fsynced file + rename + dir fsync + 3 round trips", ms(floor), None, None,
                            f"register / floor = {ms(reg['ours_pg']) / ms(floor):.2f}x"))

    # Archive everything older than 30 days (all bulk-loaded versions but production and the rollback target).
    stale = archive_ours(sides.pg)
    stale_sqlite = archive_ours(sides.sqlite)
    transition = mlflow_stage_transitions(mlflow, name, per_name, min(samples, 50))
    per_version = ms(transition)
    total = len(names) * per_name
    print(report(Results([r for r in results.rows if r.size == label]), f"[{label}] done"), flush=True)
    results.rows.append(Row(
        label, f"archive stale ({stale[1]:,} rows), ms", stale[0] * 1e3, per_version * total, stale_sqlite[0] * 1e3,
        f"MLflow: no archive-by-date; {total:,} x transition_model_version_stage at {per_version:.1f} ms each (extrapolated)",
    ))


def archive_ours(registry: ModelRegistry) -> tuple[float, int]:
    started = time.perf_counter()
    result = registry.archive_stale(max_age_days=30, keep_last=3, now=datetime.now(UTC))
    return time.perf_counter() - started, len(result.archived_ids)


def mlflow_stage_transitions(mlflow: object, name: str, per_name: int, samples: int) -> list[float]:
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in range(1, samples + 1):
            started = time.perf_counter()
            mlflow.transition_model_version_stage(name, v, "Archived")  # type: ignore[attr-defined]
            times.append(time.perf_counter() - started)
    return times


def measure_with_retries(ours_url: str, mlflow_url: str, workdir: Path, label: str, names: list[str],
                         per_name: int, samples: int, results: Results, attempts: int = 3) -> None:
    """Measure one size; start it again when PostgreSQL restarts under it (other suites restart it)."""
    for attempt in range(1, attempts + 1):
        sides: Sides | None = None
        try:
            sides = Sides(ours_url, mlflow_url, workdir, f"attempt{attempt}")
            run_size(sides, label, names, per_name, samples, results)
            return
        except Exception as exc:
            results.rows = [r for r in results.rows if r.size != label]
            if attempt == attempts or not _server_restarted(exc):
                raise
            print(f"[{label}] PostgreSQL went away ({type(exc).__name__}); measuring this size again", flush=True)
            wait_for_postgres()
        finally:
            if sides is not None:
                sides.close()


def _server_restarted(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in ("AdminShutdown", "OperationalError", "shutting down", "Connection refused",
                                   "RegistryUnavailableError", "terminating connection"))


def wait_for_postgres(timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(PG_ADMIN_URL, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            time.sleep(2)
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def report(results: Results, header: str) -> str:
    headers = ["versions", "operation", "ours PG ms", "MLflow PG ms", "MLflow / ours", "ours SQLite ms", "note"]
    rows = [[r.size, r.op, fmt(r.ours_pg), fmt(r.mlflow_pg), (fmt(r.ratio, 1) + "x") if r.ratio else "—",
             fmt(r.ours_sqlite), r.note] for r in results.rows]
    return f"{header}\n\n{table(headers, rows, numeric={2, 3, 4, 5})}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 versions only")
    parser.add_argument("--sizes", type=int, nargs="*", help="versions of one name to measure (default 1k 10k 100k)")
    parser.add_argument("--samples", type=int, default=100, help="timed calls per operation and side (median reported)")
    parser.add_argument("--no-scale", action="store_true", help="skip the 1,000 names x 100 versions run")
    parser.add_argument("--output", type=Path, help="also write the table (Markdown) to this file")
    args = parser.parse_args()
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")

    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="qmp_bench_"))
    started = time.perf_counter()
    try:
        wait_for_postgres()
        with scratch_databases("qmp_bench", "mlflow_bench") as (ours_url, mlflow_url):
            select1 = select_one(libpq_url(ours_url), 1000)
            results.extra["SELECT 1 round trip ms"] = ms(select1)
            runs = [(f"{n:,}", [NAME], n) for n in sizes]
            if not args.quick and not args.no_scale:
                runs.append(("1,000 x 100", [NAME] + [f"{NAME}_{k:04d}" for k in range(1, 1000)], 100))
            for run_no, (label, names, per_name) in enumerate(runs):
                measure_with_retries(ours_url, mlflow_url, workdir / f"run{run_no}", label, names, per_name,
                                     args.samples, results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    header = (f"Machine: {machine()}\n\nMedians of {args.samples} interleaved calls per operation; "
              f"raw `SELECT 1` round trip {results.extra['SELECT 1 round trip ms']:.3f} ms; "
              f"whole run {time.perf_counter() - started:.0f} s.")
    text = report(results, header)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
