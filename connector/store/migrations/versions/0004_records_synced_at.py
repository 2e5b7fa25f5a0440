"""crm_records (installation_id, synced_at): what changed since the last run (connector/store/related.py) without
reading every record of the tenant

Revision ID: 0004_records_synced
Revises: 0003_readings
"""
from alembic import op

revision = '0004_records_synced'
down_revision = '0003_readings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_crm_records_synced', 'crm_records', ['installation_id', 'synced_at'])


def downgrade() -> None:
    op.drop_index('ix_crm_records_synced', table_name='crm_records')
