"""owners on jobs, datasets and uploaded weights; API tokens; a job's parent (sweep trials);
a running job's request to stop and go back to the queue (its worker is shutting down), and
its step within the current epoch

Revision ID: a0b1c2d3e4f5
Revises: f1a2b3c4d5e6
Create Date: 2026-11-27 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a0b1c2d3e4f5"
down_revision = "f1a2b3c4d5e6"
branch_labels = None
depends_on = None

OWNED = ("jobs", "datasets", "uploaded_weights")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("owner", sa.String(length=100), nullable=False, index=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(length=100), nullable=True))
            batch.create_index(f"ix_{table}_owner", ["owner"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("requeue_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("step", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("epoch_steps", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_jobs_parent_id", ["parent_id"])
        batch.create_foreign_key(
            "fk_jobs_parent_id_jobs", "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_parent_id_jobs", type_="foreignkey")
        batch.drop_index("ix_jobs_parent_id")
        batch.drop_column("parent_id")
        batch.drop_column("epoch_steps")
        batch.drop_column("step")
        batch.drop_column("requeue_requested")
    for table in reversed(OWNED):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_owner")
            batch.drop_column("owner")
    op.drop_table("api_tokens")
