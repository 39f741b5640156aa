"""The benchmarks' PostgreSQL databases: one fixed name per benchmark, dropped and created again
at each run, so a run never measures an earlier run's rows (and a killed run leaves at most
one database behind, reused next time)."""

from __future__ import annotations

import sqlalchemy as sa

POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def fresh_postgres(admin_url: str, name: str) -> str:
    """An empty database called ``name`` (dropped first if it exists); its URL."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    return url
