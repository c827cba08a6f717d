"""Full-text backends behind one interface: SQLite FTS5 (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from django.db import connection

from .base import Backend


def get_backend() -> Backend:
    if connection.vendor == "postgresql":
        from .postgres import PostgresBackend

        return PostgresBackend()
    from .sqlite import SqliteBackend

    return SqliteBackend()
