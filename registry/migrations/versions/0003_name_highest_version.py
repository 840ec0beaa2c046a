"""Remember the highest version each name ever had, so a deleted version is never allocated again.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_names", schema=None) as batch_op:
        batch_op.add_column(sa.Column("highest_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_names", schema=None) as batch_op:
        batch_op.drop_column("highest_version")
