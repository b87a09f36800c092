"""workers: the heartbeat table behind mailbox leases

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import maildesk.store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', maildesk.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', maildesk.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_index('ix_workers_seen_at', 'workers', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_workers_seen_at', table_name='workers')
    op.drop_table('workers')
