"""The engine-specific part of the write path: how many rows go into a table at once, how new entity
ids are known, how many refs are looked up in one statement. Everything else (reader, planner, the
writer's rows and order) is the same on both engines.

SQLite: `executemany` of one INSERT (the statement is compiled once; each row is a step of the VM),
ids assigned by SQLite and computed from the last rowid. PostgreSQL: `COPY ... FROM STDIN` (one
statement streams every row: an INSERT per row costs a parse, plan and round trip each, which made
registration server-bound at ~1,000 entities/s), ids drawn from the sequence first."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from django.db import connection

from portal.core.db import pg_array

from ..models import Entity

log = logging.getLogger("plinth.catalog")
EXECUTEMANY_ROWS = 10_000


def _names(columns: Sequence[str]) -> str:
    return ", ".join(connection.ops.quote_name(c) for c in columns)


class SqliteRows:
    vendor = "sqlite"

    def select_by_refs(self, columns: list[str], refs: list[str]) -> list[tuple]:
        """Entity rows for many refs in one statement with one parameter (an ORM `ref__in` of 250k
        values costs seconds to compile)."""
        if not refs:
            return []
        table = connection.ops.quote_name(Entity._meta.db_table)
        sql = f'SELECT {_names(columns)} FROM {table} WHERE "ref" IN (SELECT value FROM json_each(%s))'  # noqa: S608
        return self._fetch(sql, json.dumps(refs))

    @staticmethod
    def _fetch(sql: str, param) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, [param])
            return cursor.fetchall()

    def insert(self, model, columns: Sequence[str], rows: list[tuple]) -> None:
        """Rows straight into the model's table with `executemany`, on either engine: at 250k entities
        the ORM's per-object cost dominates. Values as the backend takes them (`get_db_prep_save`)."""
        if not rows:
            return
        table = connection.ops.quote_name(model._meta.db_table)
        sql = f"INSERT INTO {table} ({_names(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608
        with connection.cursor() as cursor:
            for start in range(0, len(rows), EXECUTEMANY_ROWS):
                cursor.executemany(sql, rows[start:start + EXECUTEMANY_ROWS])

    def load(self, model, columns: Sequence[str], rows: list[tuple]) -> None:
        """A bulk load's rows into the model's table, the fastest way this engine has. Values are plain:
        str, int, bool, None, a datetime as the backend stores it, JSON as its text, a uuid as hex."""
        self.insert(model, columns, rows)

    def insert_entities(self, columns: Sequence[str], rows: list[tuple], refs: list[str]) -> list[int]:
        """Insert entity rows (without ids) whose refs are `refs`, in that order; returns their ids.
        SQLite assigns them (a supplied id costs a lookup per row): one after the other in insertion
        order, as this transaction holds the only write lock."""
        self.load(Entity, columns, rows)
        return self.inserted_ids(refs)

    def inserted_ids(self, refs: list[str]) -> list[int]:
        """The ids of rows just inserted in this order: consecutive, ending at the last rowid. The
        first and last are checked against their refs; if anything else inserted in between, read back."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_insert_rowid()")
            (last,) = cursor.fetchone()
        first = last - len(refs) + 1
        ends = dict(self.select_by_refs(["ref", "id"], [refs[0], refs[-1]]))
        if ends.get(refs[0]) == first and ends.get(refs[-1]) == last:
            return list(range(first, last + 1))
        log.warning("entity ids were not consecutive; reading %d back", len(refs))
        by_ref = dict(self.select_by_refs(["ref", "id"], refs))
        return [by_ref[ref] for ref in refs]


class PostgresRows(SqliteRows):
    vendor = "postgresql"

    def select_by_refs(self, columns: list[str], refs: list[str]) -> list[tuple]:
        if not refs:
            return []
        table = connection.ops.quote_name(Entity._meta.db_table)
        return self._fetch(f'SELECT {_names(columns)} FROM {table} WHERE "ref" = ANY(%s::text[])', pg_array(refs, text=True))  # noqa: S608

    def load(self, model, columns: Sequence[str], rows: list[tuple]) -> None:
        """COPY in text format: the server parses each value as its column's type, so JSON goes as its
        text (jsonb parses it; nothing is encoded twice) and a uuid as its 32 hex digits. Errors come
        out as Django's (IntegrityError…), as an INSERT's would."""
        if not rows:
            return
        table = connection.ops.quote_name(model._meta.db_table)
        sql = f"COPY {table} ({_names(columns)}) FROM STDIN"
        with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def insert_entities(self, columns: Sequence[str], rows: list[tuple], refs: list[str]) -> list[int]:
        """Ids are drawn from the sequence first (other writers may draw meanwhile: no guessing)."""
        ids = self.sequence_ids(Entity, len(rows))
        self.load(Entity, ["id", *columns], [(pk, *row) for pk, row in zip(ids, rows, strict=True)])
        return ids

    @staticmethod
    def sequence_ids(model, count: int) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s) ORDER BY 1",
                           [model._meta.db_table, count])
            return [row[0] for row in cursor.fetchall()]


_ENGINES = {"sqlite": SqliteRows(), "postgresql": PostgresRows()}


def engine() -> SqliteRows:
    """The rows writer of the configured database."""
    return _ENGINES[connection.vendor]
