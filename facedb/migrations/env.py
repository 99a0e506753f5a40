"""Alembic environment: facedb always hands in an open connection (see facedb.store)."""

from __future__ import annotations

from alembic import context

from facedb.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("facedb migrations run through facedb.store.migrate(), which passes a connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
