"""activity readings: NLP extractions stored per activity, keyed by taxonomy version (text read once)

Revision ID: 0003_readings
Revises: 0002_oauth
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_readings'
down_revision = '0002_oauth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_readings',
    sa.Column('installation_id', sa.String(length=32), nullable=False),
    sa.Column('activity_id', sa.String(length=64), nullable=False),
    sa.Column('taxonomy_version', sa.String(length=32), nullable=False),
    sa.Column('text_hash', sa.String(length=40), nullable=False),
    sa.Column('reading', sa.JSON(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['installation_id'], ['installations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('installation_id', 'activity_id')
    )


def downgrade() -> None:
    op.drop_table('activity_readings')
