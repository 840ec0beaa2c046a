"""live_metrics: one row per (name, trading day) scored against the realised label; monitor_settings: each
name's drift rule settings.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_metrics",
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("trading_date", sa.Date(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("ic", sa.Float(precision=53), nullable=True),
        sa.Column("rank_ic", sa.Float(precision=53), nullable=True),
        sa.Column("instruments", sa.Integer(), nullable=False),
        sa.Column("signal_return", sa.Float(precision=53), nullable=True),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("data_version", sa.String(length=128), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("model_name", "trading_date", name=op.f("pk_live_metrics")),
    )
    op.create_table(
        "monitor_settings",
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("model_name", name=op.f("pk_monitor_settings")),
    )


def downgrade() -> None:
    op.drop_table("monitor_settings")
    op.drop_table("live_metrics")
