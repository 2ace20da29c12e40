"""Alembic migrations of the store schema, run by ``store.db.open_engine`` (no alembic.ini needed)."""
