"""The data_versions table's SQL: one row inserted per ingest, a directory's rows and each directory's newest read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from registry.store.tables import DATA_VERSIONS


def insert_version(session: Session, row: dict[str, Any]) -> int:
    """Insert one data version row; returns its id."""
    result = session.execute(insert(DATA_VERSIONS).returning(DATA_VERSIONS.c.id), [row])
    return int(result.scalar_one())


def versions_of(session: Session, data_dir: str, limit: int | None) -> list[dict[str, Any]]:
    """The rows of ``data_dir``, newest first."""
    query = select(DATA_VERSIONS).where(DATA_VERSIONS.c.data_dir == data_dir).order_by(DATA_VERSIONS.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(row) for row in session.execute(query).mappings()]


def newest_per_directory(session: Session) -> list[dict[str, Any]]:
    """The newest row of every data directory, by directory."""
    newest = select(func.max(DATA_VERSIONS.c.id)).group_by(DATA_VERSIONS.c.data_dir)
    query = select(DATA_VERSIONS).where(DATA_VERSIONS.c.id.in_(newest)).order_by(DATA_VERSIONS.c.data_dir)
    return [dict(row) for row in session.execute(query).mappings()]
