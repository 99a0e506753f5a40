"""The gallery: people, their face templates, gallery facts and the change log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gallery",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "people",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_people_name", "people", ["name"])
    op.create_table(
        "faces",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("person_id", Id, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("template", sa.LargeBinary, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("x1", sa.Float),
        sa.Column("y1", sa.Float),
        sa.Column("x2", sa.Float),
        sa.Column("y2", sa.Float),
        sa.Column("det_score", sa.Float),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("image_name", sa.String(1000)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_faces_person", "faces", ["person_id"])
    op.create_index("ix_faces_person_image", "faces", ["person_id", "image_sha256"])
    op.create_table(
        "changes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("face_id", sa.BigInteger, nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_generation", "changes", ["generation"])


def downgrade() -> None:
    op.drop_table("changes")
    op.drop_table("faces")
    op.drop_table("people")
    op.drop_table("gallery")
