"""Which named constraint an IntegrityError violated, the same answer on every backend.

PostgreSQL reports the constraint's name (`diag.constraint_name`); SQLite reports only the columns of the
violated unique index (`UNIQUE constraint failed: t.a, t.b`), mapped here to the name the schema gives it.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from registry.store.tables import Base

SQLITE_UNIQUE = "UNIQUE constraint failed: "


@lru_cache(maxsize=1)
def _unique_by_columns() -> dict[tuple[str, ...], str]:
    """`("table.column", ...)` -> constraint or unique index name, for every unique rule of the schema."""
    found: dict[tuple[str, ...], str] = {}
    for table in Base.metadata.tables.values():
        rules: list[UniqueConstraint | Index] = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
        rules += [i for i in table.indexes if isinstance(i, Index) and i.unique]
        for rule in rules:
            key = tuple(f"{table.name}.{column.name}" for column in rule.columns)
            found[key] = str(rule.name)
    return found


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint `exc` reports, or None when the driver does not say."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    message = str(exc.orig)
    if message.startswith(SQLITE_UNIQUE):
        columns = tuple(part.strip() for part in message[len(SQLITE_UNIQUE):].split(","))
        return _unique_by_columns().get(columns)
    return None
