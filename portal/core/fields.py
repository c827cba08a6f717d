"""Model fields shared by apps."""

from __future__ import annotations

from django.db import models


class RowIdAutoField(models.BigAutoField):
    """A BigAutoField that is SQLite's plain rowid: no AUTOINCREMENT.

    With AUTOINCREMENT, SQLite reads and rewrites the table's row in `sqlite_sequence` (found by a
    scan) on every inserted row: for bulk-written rows that nothing refers to from outside (relation,
    tag and search-index rows) it costs as much as one of their indexes. A plain rowid may reuse the
    id of a deleted last row, which is harmless for such rows. Other databases: a BigAutoField."""

    def db_type_suffix(self, connection):
        if connection.vendor == "sqlite":
            return None
        return super().db_type_suffix(connection)
