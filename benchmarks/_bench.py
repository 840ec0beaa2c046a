"""Shared benchmark plumbing: interleaved timing, medians, scratch PostgreSQL databases, tables."""

from __future__ import annotations

import os
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

PG_ADMIN_URL = os.environ.get("QMP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def race(ops: dict[str, Callable[[int], object]], samples: int, warmup: int = 3) -> dict[str, list[float]]:
    """Run each op `samples` times, interleaved (rotating order), and return seconds per call.

    Interleaving puts every side under the same background noise of this shared machine.
    """
    names = list(ops)
    for i in range(warmup):
        for name in names:
            ops[name](-1 - i)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(samples):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            started = time.perf_counter()
            ops[name](i)
            times[name].append(time.perf_counter() - started)
    return times


def ms(samples: list[float]) -> float:
    """Median in milliseconds."""
    return statistics.median(samples) * 1e3


@contextmanager
def scratch_databases(*prefixes: str) -> Iterator[list[str]]:
    """Create one fresh PostgreSQL database per prefix (`<prefix>_<random>`) and drop them afterwards."""
    suffix = f"{os.getpid()}_{random.randrange(1 << 30):x}"
    names = [f"{prefix}_{suffix}" for prefix in prefixes]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [url_for(name, driver="postgresql+psycopg") for name in names]
    finally:
        deadline = time.monotonic() + 60  # PostgreSQL may be restarting (other test suites restart it)
        while True:
            try:
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                    for name in names:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def url_for(database: str, driver: str = "postgresql") -> str:
    """The admin URL pointed at another database, with a SQLAlchemy driver name if given."""
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{driver}{base[len('postgresql'):]}/{database}"


def libpq_url(sqlalchemy_url: str) -> str:
    """A `postgresql+psycopg://` URL as plain libpq accepts it."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def machine() -> str:
    """One line describing this machine and its PostgreSQL."""
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    with psycopg.connect(PG_ADMIN_URL) as conn:
        pg = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    try:
        import mlflow

        mlflow_version = mlflow.__version__
    except ImportError:  # pragma: no cover
        mlflow_version = "absent"
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return (
        f"{nproc} CPUs ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB RAM, PostgreSQL {pg} on loopback, "
        f"Python {platform.python_version()}, MLflow {mlflow_version}, {platform.system()} {platform.release()}"
    )


def table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """A GitHub-flavoured Markdown table; the `numeric` columns are right-aligned."""
    numeric = numeric or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i in numeric else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def peak_rss_mib() -> float:
    """This process's own peak resident memory (VmHWM), in MiB.

    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a child started by a large parent reports
    the parent's peak instead of its own.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM line in /proc/self/status")
