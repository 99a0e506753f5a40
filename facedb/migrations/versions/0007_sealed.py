"""Encryption at rest: the gallery records the key its templates and thumbnails are sealed
with (an id derived from the key, never the key; facedb.encryption), or NULL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both SQLite and PostgreSQL: every existing gallery is unsealed.
    op.add_column("gallery", sa.Column("key_id", sa.String(64)))


def downgrade() -> None:
    # A downgraded facedb would read sealed values as templates: refuse while any are sealed.
    bind = op.get_bind()
    sealed = bind.execute(sa.text("SELECT COUNT(*) FROM gallery WHERE key_id IS NOT NULL")).scalar()
    if sealed:
        raise RuntimeError(
            "this gallery is encrypted: decrypt it first (`facedb rekey --to-plaintext`), then downgrade"
        )
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("key_id")
