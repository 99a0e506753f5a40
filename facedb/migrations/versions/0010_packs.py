"""Model packs (issue 24): the pack that made the gallery's and each face's template, the
aligned crop of each face (so that ``reembed`` can make its template with another pack), and
the templates a re-embedding has made so far.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The default pack's recognizer, as galleries made before packs recorded it.
_BUFFALO_S = "w600k_mbf.onnx:sha256:9cc6e4a75f0e2bf0"


def upgrade() -> None:
    # Plain ADD COLUMNs on both SQLite and PostgreSQL: no table copy, AUTOINCREMENT kept.
    op.add_column("gallery", sa.Column("pack", sa.String(40)))
    op.add_column("faces", sa.Column("pack", sa.String(40)))
    op.add_column("faces", sa.Column("crop", sa.LargeBinary))
    op.execute(sa.text("UPDATE gallery SET pack = 'buffalo_s' WHERE model_id = :m").bindparams(m=_BUFFALO_S))
    op.execute(sa.text("UPDATE faces SET pack = 'buffalo_s' WHERE model_id = :m").bindparams(m=_BUFFALO_S))
    op.create_table(
        "reembeds",
        sa.Column("id", Id, sa.ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("template", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reembeds")
    # SQLite drops a column by copying the table: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("faces", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("crop")
        batch.drop_column("pack")
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("pack")
