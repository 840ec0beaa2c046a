"""Each version records where its artifact was written: `model_versions.artifact_location` (the model's
directory, a path or an object-store URL) and `artifact_location_inferred`.

Rows registered before this revision get the location that the settings of the process running the upgrade
give (the registry hands its artifact root over as `config.attributes["artifact_root"]`), marked inferred;
without a root the column stays NULL and reads infer it the same way.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("artifact_location", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("artifact_location_inferred", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    root = context.config.attributes.get("artifact_root")
    if root:
        versions = sa.table("model_versions", sa.column("model_id", sa.String), sa.column("artifact_location", sa.String),
                            sa.column("artifact_location_inferred", sa.Boolean))
        prefix = str(root).rstrip("/") + "/"
        op.execute(versions.update().where(versions.c.artifact_location.is_(None)).values(
            artifact_location=sa.literal(prefix) + versions.c.model_id, artifact_location_inferred=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("artifact_location_inferred")
        batch.drop_column("artifact_location")
