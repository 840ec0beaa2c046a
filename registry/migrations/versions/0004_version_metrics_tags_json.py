"""Copy each version's metrics and tags into JSON columns of model_versions, so reads need no join.

Metrics and tags are written once, at registration. The model_metrics and model_tags rows stay: they
are what filters and cleanup's ranking use (indexed), the JSON copies are what reads return.

Revision ID: 0004
Revises: 0003
"""
from collections import defaultdict
from typing import Any

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metrics", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
    _backfill(op.get_bind())


def _backfill(connection: sa.Connection) -> None:
    """Fill the new columns from the rows, in Python so that every float keeps all its bits on every backend."""
    versions = sa.table("model_versions", sa.column("id", sa.Integer), sa.column("metrics", sa.JSON),
                        sa.column("tags", sa.JSON))
    metrics = sa.table("model_metrics", sa.column("model_pk"), sa.column("name"), sa.column("value"))
    tags = sa.table("model_tags", sa.column("model_pk"), sa.column("key"), sa.column("value"))
    pks = [pk for (pk,) in connection.execute(sa.select(versions.c.id).order_by(versions.c.id))]
    update = (
        sa.update(versions).where(versions.c.id == sa.bindparam("pk"))
        .values(metrics=sa.bindparam("m", type_=sa.JSON), tags=sa.bindparam("t", type_=sa.JSON))
    )
    for start in range(0, len(pks), BATCH):
        low, high = pks[start], pks[min(start + BATCH, len(pks)) - 1]
        found: dict[int, dict[str, Any]] = defaultdict(dict)
        labels: dict[int, dict[str, Any]] = defaultdict(dict)
        for pk, name, value in connection.execute(
            sa.select(metrics.c.model_pk, metrics.c.name, metrics.c.value)
            .where(metrics.c.model_pk.between(low, high)).order_by(metrics.c.model_pk, metrics.c.name)
        ):
            found[pk][name] = float(value)
        for pk, key, value in connection.execute(
            sa.select(tags.c.model_pk, tags.c.key, tags.c.value)
            .where(tags.c.model_pk.between(low, high)).order_by(tags.c.model_pk, tags.c.key)
        ):
            labels[pk][key] = value
        connection.execute(update, [
            {"pk": pk, "m": found.get(pk, {}), "t": labels.get(pk, {})}
            for pk in pks[start:start + BATCH]
        ])


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("tags")
        batch_op.drop_column("metrics")
