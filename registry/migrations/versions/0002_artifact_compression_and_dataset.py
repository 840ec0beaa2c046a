"""artifact compression and sizes, filterable dataset columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00

Adds the artifact's compression and original (uncompressed) size, and copies the dataset fields a
model was trained on out of the dataset_info JSON into columns list_models can filter on.
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("artifact_compression", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("artifact_original_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("dataset_instruments", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dataset_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("dataset_end", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("dataset_handler", sa.String(length=256), nullable=True))
        batch_op.create_index("ix_model_versions_dataset_handler", ["dataset_handler"], unique=False)
    _backfill()


def _backfill() -> None:
    """Existing rows: uncompressed artifacts, dataset columns from their dataset_info JSON."""
    from registry.models import DatasetConfig, dataset_columns

    bind = op.get_bind()
    versions = sa.table(
        "model_versions",
        sa.column("id", sa.Integer()),
        sa.column("dataset_info", sa.JSON()),
        sa.column("artifact_size", sa.BigInteger()),
        sa.column("artifact_original_size", sa.BigInteger()),
        sa.column("dataset_instruments", sa.Text()),
        sa.column("dataset_start", sa.Date()),
        sa.column("dataset_end", sa.Date()),
        sa.column("dataset_handler", sa.String()),
    )
    bind.execute(sa.update(versions).values(artifact_original_size=versions.c.artifact_size))
    rows = bind.execute(sa.select(versions.c.id, versions.c.dataset_info).where(versions.c.dataset_info.is_not(None)))
    for pk, info in rows.all():
        if isinstance(info, dict):
            bind.execute(sa.update(versions).where(versions.c.id == pk).values(
                **dataset_columns(DatasetConfig.model_validate(info))))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_dataset_handler")
        batch_op.drop_column("dataset_handler")
        batch_op.drop_column("dataset_end")
        batch_op.drop_column("dataset_start")
        batch_op.drop_column("dataset_instruments")
        batch_op.drop_column("artifact_original_size")
        batch_op.drop_column("artifact_compression")
