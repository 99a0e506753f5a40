"""Alembic migrations of the gallery schema; applied by facedb.store when a gallery opens."""
