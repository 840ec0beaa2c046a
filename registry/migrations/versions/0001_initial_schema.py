"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 03:45:09.550226
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('model_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.String(length=200), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=True),
    sa.Column('actor', sa.String(length=256), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_events'))
    )
    with op.batch_alter_table('model_events', schema=None) as batch_op:
        batch_op.create_index('ix_model_events_model_id_id', ['model_id', 'id'], unique=False)
        batch_op.create_index('ix_model_events_name_id', ['model_name', 'id'], unique=False)

    op.create_table('model_names',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('registrations', sa.BigInteger(), nullable=False),
    sa.Column('previous_production_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_model_names'))
    )
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.String(length=200), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('v_major', sa.Integer(), nullable=False),
    sa.Column('v_minor', sa.Integer(), nullable=False),
    sa.Column('v_patch', sa.Integer(), nullable=False),
    sa.Column('v_release', sa.Integer(), nullable=False),
    sa.Column('v_label', sa.String(length=32), nullable=False),
    sa.Column('model_type', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('training_date', sa.Date(), nullable=False),
    sa.Column('experiment_name', sa.String(length=256), nullable=True),
    sa.Column('qlib_recorder_id', sa.String(length=256), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('hyperparameters', sa.JSON(), nullable=False),
    sa.Column('dataset_info', sa.JSON(), nullable=True),
    sa.Column('artifact_sha256', sa.String(length=64), nullable=False),
    sa.Column('artifact_size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approval_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('registered', 'candidate', 'production', 'archived')", name=op.f('ck_model_versions_status_known')),
    sa.ForeignKeyConstraint(['model_name'], ['model_names.name'], name=op.f('fk_model_versions_model_name_model_names')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('model_id', name=op.f('uq_model_versions_model_id')),
    sa.UniqueConstraint('model_name', 'flow_run_id', name='uq_model_versions_name_flow_run'),
    sa.UniqueConstraint('model_name', 'v_major', 'v_minor', 'v_patch', 'v_release', 'v_label', name='uq_model_versions_name_semver'),
    sa.UniqueConstraint('model_name', 'version', name='uq_model_versions_name_version')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index('ix_model_versions_experiment', ['experiment_name'], unique=False)
        batch_op.create_index('ix_model_versions_name_status_id', ['model_name', 'status', 'id'], unique=False)
        batch_op.create_index('ix_model_versions_name_training_date', ['model_name', 'training_date'], unique=False)
        batch_op.create_index('ix_model_versions_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('uq_model_versions_one_production', ['model_name'], unique=True, postgresql_where=sa.text("status = 'production'"), sqlite_where=sa.text("status = 'production'"))

    op.create_table('model_metrics',
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['model_versions.id'], name=op.f('fk_model_metrics_model_pk_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_pk', 'name', name=op.f('pk_model_metrics'))
    )
    with op.batch_alter_table('model_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_model_metrics_name_value', ['name', 'value'], unique=False)

    op.create_table('model_tags',
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['model_versions.id'], name=op.f('fk_model_tags_model_pk_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_pk', 'key', name=op.f('pk_model_tags'))
    )
    with op.batch_alter_table('model_tags', schema=None) as batch_op:
        batch_op.create_index('ix_model_tags_key_value', ['key', 'value'], unique=False)




def downgrade() -> None:
    
    with op.batch_alter_table('model_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_model_tags_key_value')

    op.drop_table('model_tags')
    with op.batch_alter_table('model_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_model_metrics_name_value')

    op.drop_table('model_metrics')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_model_versions_one_production', postgresql_where=sa.text("status = 'production'"), sqlite_where=sa.text("status = 'production'"))
        batch_op.drop_index('ix_model_versions_status_id')
        batch_op.drop_index('ix_model_versions_name_training_date')
        batch_op.drop_index('ix_model_versions_name_status_id')
        batch_op.drop_index('ix_model_versions_experiment')

    op.drop_table('model_versions')
    op.drop_table('model_names')
    with op.batch_alter_table('model_events', schema=None) as batch_op:
        batch_op.drop_index('ix_model_events_name_id')
        batch_op.drop_index('ix_model_events_model_id_id')

    op.drop_table('model_events')

