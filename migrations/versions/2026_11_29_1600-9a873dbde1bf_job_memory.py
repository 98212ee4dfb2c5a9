"""a running job's resident memory at its last heartbeat, and its peak: what a job held when
its worker process was killed for running out of memory

Revision ID: 9a873dbde1bf
Revises: b7c8d9e0f1a2
Create Date: 2026-11-29 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "9a873dbde1bf"
down_revision = "b7c8d9e0f1a2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("rss_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("peak_rss_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("peak_rss_bytes")
        batch.drop_column("rss_bytes")
