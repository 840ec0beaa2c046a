"""approvals: one row per request for a person's approval, decided exactly once by a conditional UPDATE.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STATES = "state IN ('pending', 'approved', 'rejected', 'refused', 'timed_out', 'superseded')"


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("production_model_id", sa.String(200), nullable=True),
        sa.Column("comparison", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(256), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.CheckConstraint(STATES, name=op.f("ck_approvals_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint("model_id", name=op.f("uq_approvals_model_id")),
    )
    op.create_index(op.f("ix_approvals_name_state"), "approvals", ["model_name", "state"])


def downgrade() -> None:
    op.drop_index("ix_approvals_name_state", table_name="approvals")
    op.drop_table("approvals")
