"""Status and its times move out of model_versions into a narrow model_states table.

model_versions rows are then written once, at registration, and never updated. A status change rewrites
a row of about 100 bytes in model_states (and its two small indexes) instead of a 1.6 KB version row
with its JSON columns, a new entry in each of the version table's unique indexes and the WAL for all of
it: archiving 100,000 rows took 2.1 s as an UPDATE of model_versions and 0.25 s of model_states.

- model_states(model_pk, model_name, status, updated_at, archived_at, purged_at, approval_requested_at),
  one row per version, copied from model_versions; the status check, the one-production partial unique
  index and the live-rows name/status index move with the status.
- The remaining secondary indexes of model_versions (name/training date, experiment, dataset handler)
  cover every row again: the rows never change, so a partial index saves archiving nothing.

Revision ID: 0006
Revises: 0005
"""
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LIVE = "status <> 'archived'"
PRODUCTION = "status = 'production'"
STATUS_CHECK = "status IN ('registered', 'candidate', 'production', 'archived')"
STATE_COLUMNS = ("status", "updated_at", "archived_at", "purged_at", "approval_requested_at")
SECONDARY = {
    "ix_model_versions_name_training_date": ["model_name", "training_date"],
    "ix_model_versions_experiment": ["experiment_name"],
    "ix_model_versions_dataset_handler": ["dataset_handler"],
}


def _time(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "model_states",
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("updated_at", nullable=False),
        _time("archived_at"),
        _time("purged_at"),
        _time("approval_requested_at"),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_model_states_status_known")),
        sa.ForeignKeyConstraint(["model_pk"], ["model_versions.id"], name=op.f("fk_model_states_model_pk_model_versions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_pk", name=op.f("pk_model_states")),
    )
    op.execute(
        "INSERT INTO model_states (model_pk, model_name, status, updated_at, archived_at, purged_at, approval_requested_at) "
        "SELECT id, model_name, status, updated_at, archived_at, purged_at, approval_requested_at FROM model_versions"
    )
    op.create_index("uq_model_states_one_production", "model_states", ["model_name"], unique=True,
                    postgresql_where=sa.text(PRODUCTION), sqlite_where=sa.text(PRODUCTION))
    op.create_index("ix_model_states_name_status_pk", "model_states", ["model_name", "status", "model_pk"],
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    for name in ("uq_model_versions_one_production", "ix_model_versions_name_status_id", *SECONDARY):
        op.drop_index(name, table_name="model_versions")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_model_versions_status_known"), type_="check")
        for column in STATE_COLUMNS:
            batch_op.drop_column(column)
    for name, columns in SECONDARY.items():
        op.create_index(name, "model_versions", columns)


def downgrade() -> None:
    for name in SECONDARY:
        op.drop_index(name, table_name="model_versions")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch_op.add_column(_time("updated_at"))
        batch_op.add_column(_time("archived_at"))
        batch_op.add_column(_time("purged_at"))
        batch_op.add_column(_time("approval_requested_at"))
    for column in STATE_COLUMNS:
        op.execute(f"UPDATE model_versions SET {column} = "
                   f"(SELECT s.{column} FROM model_states s WHERE s.model_pk = model_versions.id)")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_check_constraint(op.f("ck_model_versions_status_known"), STATUS_CHECK)
    op.create_index("uq_model_versions_one_production", "model_versions", ["model_name"], unique=True,
                    postgresql_where=sa.text(PRODUCTION), sqlite_where=sa.text(PRODUCTION))
    op.create_index("ix_model_versions_name_status_id", "model_versions", ["model_name", "status", "id"],
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    for name, columns in SECONDARY.items():
        op.create_index(name, "model_versions", columns, postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    op.drop_table("model_states")
