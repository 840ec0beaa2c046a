"""Engines, migrations and the one managed-transaction helper that retries and translates driver errors."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from registry.errors import InvalidNameError, MigrationError, RegistryUnavailableError
from registry.store.watchdog import Watchdog

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"
# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock timeout, and
# the connection-loss classes a restart produces.
RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001"}
MIGRATION_LOCK_KEY = 7_202_611  # pg_advisory_xact_lock key that serializes concurrent first-use migrations


def sqlite_url_for(registry_dir: Path) -> str:
    """The default database: a SQLite file inside the registry directory."""
    return f"sqlite:///{(registry_dir / 'registry.db').resolve()}"


def describe_url(url: str | URL) -> str:
    """The URL with any password hidden, for error messages."""
    return make_url(url).render_as_string(hide_password=True)


def json_loads(text: str | bytes) -> Any:
    """orjson (the faster parser, on the JSON columns of a page of models), json for what it refuses:
    NaN or Infinity that an older writer put in SQLite, integers beyond 64 bits."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_registry_engine(database_url: str, *, timeout_s: float | None = None, **engine_options: Any) -> Engine:
    """An engine tuned for the registry: SQLite in WAL mode with immediate write locks; on PostgreSQL, with
    `timeout_s`, statements, pool waits and connection attempts bounded by it.

    No pre-ping: it would cost a round trip per transaction, and `Database.run` / `Database.read` already
    retry a unit of work whose connection turns out dead (SQLAlchemy then recycles the whole pool).
    """
    url = make_url(database_url)
    engine_options.setdefault("json_deserializer", json_loads)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **engine_options)
        _configure_sqlite(engine)
        return engine
    options: dict[str, Any] = {"pool_size": 5, "max_overflow": 10, "pool_recycle": 1800}
    if timeout_s is not None:
        options["pool_timeout"] = timeout_s
    options.update(engine_options)
    if url.get_backend_name() == "postgresql":
        options["connect_args"] = _postgres_connect_args(url, options.get("connect_args"), timeout_s)
    return create_engine(url, **options)


def _postgres_connect_args(url: URL, given: dict[str, Any] | None, timeout_s: float | None = None) -> dict[str, Any]:
    """The caller's connect arguments plus ours: fail fast when the server is gone (so the retry budget, not
    the OS, bounds the wait), statements bounded by `timeout_s` on the server (unless the URL or the caller sets
    statement_timeout), TCP keepalives and a TCP user timeout (a network path that drops everything is noticed
    by the kernel), and sessions in UTC unless the URL or the caller sets a time zone. psycopg then
    returns timestamps in `datetime.timezone.utc`, which `as_utc` passes through untouched (a page of 100 models
    holds 200-400 of them); in another zone they are converted."""
    args = {"connect_timeout": 5, **_tcp_liveness(timeout_s), **(given or {})}
    query_options = url.query.get("options", "")
    if isinstance(query_options, tuple):  # `options` given more than once in the URL
        query_options = " ".join(query_options)
    user_options = str(args.get("options", query_options))  # connect_args override the URL's, as in SQLAlchemy
    if "timezone" not in user_options.lower():
        user_options = f"{user_options} -c TimeZone=UTC".strip()
    if timeout_s is not None and "statement_timeout" not in user_options.lower():
        user_options = f"{user_options} -c statement_timeout={int(timeout_s * 1000)}"
    args["options"] = user_options
    return args


def _tcp_liveness(timeout_s: float | None) -> dict[str, Any]:
    """libpq's keepalive and TCP user timeout options: a peer whose kernel stops acknowledging is dropped."""
    if timeout_s is None:
        return {}
    return {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 5, "keepalives_count": 3,
            "tcp_user_timeout": int(timeout_s * 1000)}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the lock up front: a deferred transaction that later upgrades to a writer
        # can fail with SQLITE_BUSY without waiting for busy_timeout. Readers stay deferred (WAL).
        read_only = connection.get_execution_options().get("qmp_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def is_retryable(exc: BaseException) -> bool:
    """Whether a database error is transient (conflict, deadlock, lost connection, busy SQLite)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            return True
        message = str(exc.orig).lower()
        if "database is locked" in message or "database is busy" in message:
            return True
        if isinstance(exc, OperationalError) and sqlstate is None and "sqlite" not in type(exc.orig).__module__:
            return True  # psycopg raises OperationalError without a SQLSTATE when it cannot connect
    return False


# -- statements sent on the psycopg connection itself ------------------------------------------------------
# For the hot paths only, and only for statements whose parameters and results need no SQLAlchemy type
# processing (strings, numbers, dates, JSON; the callers convert timestamps to UTC themselves). Driver errors
# come out as SQLAlchemy's, and a lost connection is invalidated, as on `Connection.execute`.


@contextmanager
def _as_sqlalchemy_errors(connection: Connection, sql: str) -> Iterator[None]:
    dbapi = connection.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        disconnected = connection.dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if disconnected:
            connection.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, dbapi.Error, connection_invalidated=disconnected,
                                  dialect=connection.dialect) from exc


def _driver_call(connection: Connection, statement: ClauseElement, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sql, literals = _driver_sql(statement, connection.dialect)
    return sql, {**literals, **params}


def fetch_all(connection: Connection, statement: ClauseElement, params: dict[str, Any]) -> list[Any]:
    """PostgreSQL: one statement's rows, skipping SQLAlchemy's per-execution work (a large part of a
    single-row read's time)."""
    driver: Any = connection.connection.driver_connection
    sql, values = _driver_call(connection, statement, params)
    with _as_sqlalchemy_errors(connection, sql):
        rows: list[Any] = driver.execute(sql, values).fetchall()
    return rows


def run_pipelined(connection: Connection, statements: Sequence[tuple[ClauseElement, dict[str, Any]]]) -> list[Any]:
    """PostgreSQL: send `statements` (after the BEGIN psycopg opens the transaction with) in one psycopg
    pipeline, one round trip for all; returns each one's first row (None when it returned none)."""
    driver: Any = connection.connection.driver_connection
    calls = [_driver_call(connection, statement, params) for statement, params in statements]
    with _as_sqlalchemy_errors(connection, calls[0][0]):
        with driver.pipeline():
            cursors = [driver.execute(sql, values) for sql, values in calls]
        return [cursor.fetchone() for cursor in cursors]


@lru_cache(maxsize=64)
def _driver_sql(statement: ClauseElement, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for the driver, and the values of its literal parameters (such as a `+ 1`)."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)


def _watch_connections(engine: Engine, watchdog: Watchdog) -> None:
    """Hand every connection checked out under a deadline to the watchdog; bound connection attempts by what
    is left of the deadline (libpq's minimum is 2 s)."""
    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        watchdog.watch(dbapi_connection)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        watchdog.forget(dbapi_connection)

    @event.listens_for(engine, "do_connect")
    def _on_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        remaining = watchdog.remaining()
        if remaining is not None:
            cparams["connect_timeout"] = max(2, min(int(cparams.get("connect_timeout", 5)), math.ceil(remaining)))


class Database:
    """An engine plus a session factory; `run` executes a unit of work in one retried transaction."""

    def __init__(self, database_url: str, *, retry_budget_s: float = 30.0, max_attempts: int = 12,
                 timeout_s: float | None = None, **engine_options: Any):
        self.url = database_url
        self.engine = create_registry_engine(database_url, timeout_s=timeout_s, **engine_options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(
            self.engine.execution_options(qmp_read_only=True), expire_on_commit=False
        )
        # Single-statement reads (`read`): on PostgreSQL a small pool of connections that stay in autocommit
        # (nothing to set on checkout, nothing to roll back on return); on SQLite a deferred transaction.
        if self.engine.dialect.name == "postgresql":
            read_options = {"pool_size": 5, "max_overflow": 5, **engine_options,
                            "isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None}
            self.read_engine = create_registry_engine(database_url, timeout_s=timeout_s, **read_options)
        else:
            self.read_engine = self.engine.execution_options(qmp_read_only=True)
        self.retry_budget_s = retry_budget_s
        self.max_attempts = max_attempts
        # The client-side deadline: server databases only (a SQLite file has no silent peer).
        self.timeout_s = timeout_s if self.engine.dialect.name != "sqlite" else None
        self.watchdog = Watchdog()
        if self.timeout_s is not None:
            for engine in {self.engine, self.read_engine.engine}:
                _watch_connections(engine, self.watchdog)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def run(
        self,
        unit_of_work: Callable[[Session], T],
        *,
        undo: Callable[[], None] | None = None,
        read_only: bool = False,
    ) -> T:
        """Run `unit_of_work` in one transaction, retrying transient failures within the retry budget.

        `undo` is called after every failed attempt, to reverse side effects outside the database.
        """
        factory = self.read_sessions if read_only else self.sessions

        def attempt() -> T:
            with factory() as session, session.begin():
                return unit_of_work(session)

        return self._retrying(attempt, undo)

    def read(self, query: Callable[[Connection], T]) -> T:
        """Run a read of one statement on a plain Core connection, retried like `run`.

        On PostgreSQL the connection is in autocommit mode: a single statement sees one snapshot by itself,
        so the read costs one round trip (no BEGIN, no COMMIT). SQLite reads in a deferred transaction.
        """
        def attempt() -> T:
            with self.read_engine.connect() as connection:
                if self.dialect == "postgresql":
                    return query(connection)
                with connection.begin():
                    return query(connection)

        return self._retrying(attempt, None)

    def _retrying(self, attempt_once: Callable[[], T], undo: Callable[[], None] | None) -> T:
        started = time.monotonic()
        deadline = started + self.retry_budget_s
        # With a timeout, the whole operation ends by `started + max(timeout, budget)` at the latest.
        cutoff = None if self.timeout_s is None else started + max(self.timeout_s, self.retry_budget_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._within_deadline(attempt_once, cutoff)
            except BaseException as exc:
                if undo is not None:
                    undo()
                if isinstance(exc, DataError) and "NUL" in str(exc.orig):
                    # PostgreSQL refuses NUL in any text value; SQLite stores it. Fail alike, before SQL.
                    raise InvalidNameError(f"text containing a NUL character is not allowed: {exc.orig}") from exc
                if isinstance(exc, PoolTimeoutError):  # every pooled connection is busy past the timeout
                    raise RegistryUnavailableError(
                        f"registry database {describe_url(self.url)}: no connection free: {exc}") from exc
                if not (isinstance(exc, DBAPIError) and is_retryable(exc)):
                    raise
                if cutoff is not None and time.monotonic() >= cutoff - 0.05:
                    raise RegistryUnavailableError(
                        f"registry database {describe_url(self.url)} did not answer within "
                        f"{self.timeout_s:g} s (QMP_DATABASE_TIMEOUT): {exc.orig}"
                    ) from exc
                if attempt >= self.max_attempts or time.monotonic() >= deadline:
                    raise RegistryUnavailableError(
                        f"registry database {describe_url(self.url)} still failing after {attempt} attempts "
                        f"({self.retry_budget_s:.0f} s budget): {exc.orig}"
                    ) from exc
                pause = min(2.0, 0.02 * 2 ** min(attempt, 7)) * (0.5 + random.random())
                if cutoff is not None:
                    pause = max(0.0, min(pause, cutoff - time.monotonic() - 0.1))
                log.debug("retrying registry transaction after %s (attempt %d)", type(exc.orig).__name__, attempt)
                time.sleep(pause)

    def _within_deadline(self, attempt_once: Callable[[], T], cutoff: float | None) -> T:
        """One attempt, its connections cut when it outlives the timeout (or the operation's cutoff)."""
        if cutoff is None or self.timeout_s is None:
            return attempt_once()
        with self.watchdog.deadline(min(self.timeout_s, cutoff - time.monotonic())):
            return attempt_once()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine.engine is not self.engine:
            self.read_engine.engine.dispose()

    # -- schema ------------------------------------------------------------------------------------

    def alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def schema_is_current(self) -> bool:
        """Whether the database is at the newest migration."""
        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
        with self._bounded(), self._connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head

    def _bounded(self) -> AbstractContextManager[object]:
        """The client-side deadline of one unit of work (none on SQLite)."""
        return self.watchdog.deadline(self.timeout_s) if self.timeout_s is not None else nullcontext()

    def upgrade(self, artifact_root: str | None = None) -> None:
        """Apply pending migrations (serialized across processes on PostgreSQL); `artifact_root` is the
        artifact location today's settings give, recorded (as inferred) for versions that predate locations."""
        config = self.alembic_config()
        config.attributes["artifact_root"] = artifact_root
        with self._connect() as connection:
            sqlite = self.dialect == "sqlite"
            if sqlite:
                # SQLite changes a constraint by copying the table and dropping the old one: with foreign
                # keys on, that drop would cascade to the metric and tag rows. SQLite's own procedure for
                # such changes: keys off (outside any transaction), migrate, check them, keys back on.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with connection.begin():
                    if self.dialect == "postgresql":
                        connection.execute(text("SET LOCAL statement_timeout = 0"))  # a migration may take long
                        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                    if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                        raise MigrationError(f"migration left rows without their parent: {broken[:5]}")
            finally:
                if sqlite:
                    connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]

    def _connect(self) -> Connection:
        """A connection, or RegistryUnavailableError naming the database when it cannot be reached."""
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise RegistryUnavailableError(
                f"cannot reach registry database {describe_url(self.url)}: {exc.orig}"
            ) from exc

    def ensure_schema(self, artifact_root: str | None = None) -> None:
        """Migrate a new or older database on first use."""
        if not self.schema_is_current():
            self.upgrade(artifact_root)
