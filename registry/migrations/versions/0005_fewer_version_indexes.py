"""Drop two indexes of model_versions that every write paid for and no read needed.

- uq_model_versions_name_version: implied by uq_model_versions_name_semver (two version strings with
  the same semantic version are refused by it, so equal strings are too).
- ix_model_versions_status_id: production lookups across names use the partial unique index on
  production rows; other status-only listings scan the primary key backwards (newest first).

Archiving writes a new version of each archived row into every index of the table (status is indexed,
so no update is HOT): each index dropped here saves about a tenth of archiving 100,000 rows.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_model_versions_name_version", type_="unique")
        batch_op.drop_index("ix_model_versions_status_id")


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_status_id", ["status", "id"], unique=False)
        batch_op.create_unique_constraint("uq_model_versions_name_version", ["model_name", "version"])
