"""Count the SQL statements a piece of code sends, at the driver: psycopg's cursor on PostgreSQL (the registry's
hot reads bypass SQLAlchemy there), SQLite's trace callback on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event

from registry import ModelRegistry


@contextmanager
def counted_statements(registry: ModelRegistry) -> Iterator[list[str]]:
    """Yield a list that fills with the text of every statement sent to the database meanwhile."""
    sent: list[str] = []
    if registry.db.dialect == "postgresql":
        original = psycopg.Cursor.execute

        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(query.decode() if isinstance(query, bytes) else str(query))
            return original(self, query, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        try:
            yield sent
        finally:
            psycopg.Cursor.execute = original  # type: ignore[method-assign]
        return
    engine = registry.db.engine

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(sent.append)

    event.listen(engine, "connect", trace)
    engine.dispose()  # pooled connections were opened without the callback
    try:
        yield sent
    finally:
        event.remove(engine, "connect", trace)
        engine.dispose()
