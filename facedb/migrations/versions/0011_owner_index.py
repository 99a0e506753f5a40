"""A covering index of each face's owner: every search reads the hits' owners, and from the
faces table itself that is one page a hit (a face's row holds its template, thumbnail and
crop: gigabytes at a million faces, mostly out of the page cache); the index holds (id,
person_id) alone, a few tens of MB at a million faces.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_faces_id_person", "faces", ["id", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_faces_id_person", table_name="faces")
