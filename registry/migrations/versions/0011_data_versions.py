"""data_versions: one row per ingest into a Qlib data directory (data version, counts, validation, source).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("data_dir", sa.String(1024), nullable=False),
        sa.Column("calendar_end", sa.Date(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rows_added", sa.Integer(), nullable=False),
        sa.Column("days_added", sa.Integer(), nullable=False),
        sa.Column("corrections", sa.JSON(), nullable=False),
        sa.Column("validation", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_versions")),
    )
    op.create_index(op.f("ix_data_versions_dir_id"), "data_versions", ["data_dir", "id"])


def downgrade() -> None:
    op.drop_index("ix_data_versions_dir_id", table_name="data_versions")
    op.drop_table("data_versions")
