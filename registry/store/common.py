"""Pieces every store module uses: literal SQL fragments, who-did-it, and the impossible-id guard."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    literal_column,
)

from registry.errors import ModelNotFoundError
from registry.statuses import ModelStatus


def row_limit(n: int) -> ColumnElement[int]:
    """A LIMIT written into the SQL text: PostgreSQL costs a generic plan with a bound LIMIT as if it returned
    a tenth of the table, keeps planning every execution instead, and planning costs more than the query."""
    return literal_column(str(int(n)), Integer)


def status_literal(status: ModelStatus) -> ColumnElement[str]:
    """A status written into the SQL text instead of bound: PostgreSQL can then serve a prepared statement
    from its cached generic plan through the partial indexes whose predicates name a status (with a bound
    value it must plan every execution again, which costs more than running the query)."""
    return literal_column(f"'{ModelStatus(status).value}'", String)


PRODUCTION = status_literal(ModelStatus.PRODUCTION)


@dataclass(frozen=True)
class EventSpec:
    """Who did a change and why, recorded with it."""

    actor: str
    reason: str | None
    flow_run_id: str | None



def refuse_impossible_id(model_id: str) -> None:
    # No model id holds NUL, and PostgreSQL refuses to even compare with one: same answer on every backend.
    if "\x00" in model_id:
        raise ModelNotFoundError(f"model {model_id!r} not found in registry")
