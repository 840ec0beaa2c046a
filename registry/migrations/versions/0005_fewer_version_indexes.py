"""Fewer and narrower indexes on model_versions: every write pays for each of them.

- uq_model_versions_name_version is dropped: uq_model_versions_name_semver implies it (two version strings
  with the same semantic version are refused by it, so equal strings are too).
- ix_model_versions_status_id is dropped: production lookups across names use the partial unique index
  on production rows; other status-only listings scan the primary key backwards (newest first).
- The secondary indexes (name/status, name/training date, experiment, dataset handler) now cover only
  rows that are not archived. Archived rows are most rows of an old registry and are rarely searched;
  archiving then writes the new row version into four indexes fewer (status is indexed, so no archiving
  update is HOT), and the indexes stay the size of the live models.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LIVE = "status <> 'archived'"
SECONDARY = {
    "ix_model_versions_name_status_id": ["model_name", "status", "id"],
    "ix_model_versions_name_training_date": ["model_name", "training_date"],
    "ix_model_versions_experiment": ["experiment_name"],
    "ix_model_versions_dataset_handler": ["dataset_handler"],
}


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_model_versions_name_version", type_="unique")
        batch_op.drop_index("ix_model_versions_status_id")
    for name, columns in SECONDARY.items():
        op.drop_index(name, table_name="model_versions")
        op.create_index(name, "model_versions", columns, postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))


def downgrade() -> None:
    for name, columns in SECONDARY.items():
        op.drop_index(name, table_name="model_versions")
        op.create_index(name, "model_versions", columns)
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_status_id", ["status", "id"], unique=False)
        batch_op.create_unique_constraint("uq_model_versions_name_version", ["model_name", "version"])
