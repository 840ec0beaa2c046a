"""model_series: the daily series of a version's evaluation (daily IC, cumulative excess return).

One row per version and series, the points as JSON. In the database rather than beside the model file, so
a purge of the file leaves them readable; versions registered before this migration have none.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_series",
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["model_pk"], ["model_versions.id"], name=op.f("fk_model_series_model_pk_model_versions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_pk", "name", name=op.f("pk_model_series")),
    )


def downgrade() -> None:
    op.drop_table("model_series")
