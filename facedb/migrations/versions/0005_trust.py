"""Answers you can trust: calibrations, "not this person" examples, each face's quality, and
the template of a sighting (so that it can be confirmed or rejected later).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("target_kind", sa.String(8), nullable=False),  # "fpir" or "fmr"
        sa.Column("target", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("faces", sa.Integer, nullable=False),
        sa.Column("estimated_fpir", sa.Float),
        sa.Column("estimated_fnir", sa.Float),
        sa.Column("params", sa.Text, nullable=False),  # the score model, as JSON
        sqlite_autoincrement=True,
    )
    op.create_table(
        "rejections",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("person_id", Id, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("template", sa.LargeBinary, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rejections_person", "rejections", ["person_id"])
    # A plain ADD COLUMN on both SQLite and PostgreSQL: no table copy, AUTOINCREMENT kept.
    op.add_column("faces", sa.Column("quality", sa.Float))
    op.add_column("sightings", sa.Column("template", sa.LargeBinary))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep AUTOINCREMENT (ids never reused).
    keep = {"sqlite_autoincrement": True}
    with op.batch_alter_table("sightings", table_kwargs=keep) as batch:
        batch.drop_column("template")
    with op.batch_alter_table("faces", table_kwargs=keep) as batch:
        batch.drop_column("quality")
    op.drop_index("ix_rejections_person", table_name="rejections")
    op.drop_table("rejections")
    op.drop_table("calibrations")
