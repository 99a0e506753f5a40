"""A gallery identity, and how far each shared vector store has applied the change log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.add_column(sa.Column("uid", sa.String(36), nullable=True))
    op.execute(sa.text("UPDATE gallery SET uid = :uid").bindparams(uid=str(uuid.uuid4())))
    op.create_table(
        "vector_sync",
        sa.Column("store", sa.String(500), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vector_sync")
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("uid")
