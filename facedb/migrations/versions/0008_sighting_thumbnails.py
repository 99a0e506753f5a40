"""A thumbnail with each visit: the face as the visit began, for the review of sightings
(biometric data, sealed like the others when the gallery has a key; erased with the visit).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both SQLite and PostgreSQL: no table copy, AUTOINCREMENT kept.
    op.add_column("sightings", sa.Column("thumbnail", sa.LargeBinary))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("sightings", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("thumbnail")
