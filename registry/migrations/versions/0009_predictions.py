"""The predictions store: one score per (model, trading day, instrument), written by the predict flow.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("trading_date", sa.Date(), nullable=False),
        sa.Column("instrument", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("data_version", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("model_id", "trading_date", "instrument", name=op.f("pk_predictions")),
    )
    op.create_index("ix_predictions_name_date", "predictions", ["model_name", "trading_date"])


def downgrade() -> None:
    op.drop_index("ix_predictions_name_date", table_name="predictions")
    op.drop_table("predictions")
