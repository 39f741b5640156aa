"""Alembic migrations of driftloop's own tables."""
