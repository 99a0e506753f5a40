"""Without code: a thumbnail with each face, and the faces of the groups nobody has named yet.

A group is a stranger: the watch's strangers and the groups of ``discover`` are one table, and
a group's faces (where each was seen, its template and its thumbnail) are ``stranger_faces``;
``discovered_photos`` are the photos ``discover`` has looked at (not twice).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stranger_faces",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("stranger_id", Id, sa.ForeignKey("strangers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("photo", sa.String(1000), nullable=False),
        sa.Column("x1", sa.Float, nullable=False),
        sa.Column("y1", sa.Float, nullable=False),
        sa.Column("x2", sa.Float, nullable=False),
        sa.Column("y2", sa.Float, nullable=False),
        sa.Column("det_score", sa.Float, nullable=False),
        sa.Column("quality", sa.Float),
        sa.Column("template", sa.LargeBinary, nullable=False),
        sa.Column("thumbnail", sa.LargeBinary),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "discovered_photos",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("photo", sa.String(1000), nullable=False, unique=True),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_stranger_faces_stranger", "stranger_faces", ["stranger_id"])
    op.create_index("ix_stranger_faces_photo", "stranger_faces", ["photo"])
    # A plain ADD COLUMN on both SQLite and PostgreSQL: no table copy, AUTOINCREMENT kept.
    op.add_column("faces", sa.Column("thumbnail", sa.LargeBinary))
    op.add_column("strangers", sa.Column("origin", sa.String(16)))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep AUTOINCREMENT (ids never reused).
    keep = {"sqlite_autoincrement": True}
    with op.batch_alter_table("strangers", table_kwargs=keep) as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("faces", table_kwargs=keep) as batch:
        batch.drop_column("thumbnail")
    op.drop_index("ix_stranger_faces_photo", table_name="stranger_faces")
    op.drop_index("ix_stranger_faces_stranger", table_name="stranger_faces")
    op.drop_table("stranger_faces")
    op.drop_table("discovered_photos")
