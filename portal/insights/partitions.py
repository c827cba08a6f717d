"""PostgreSQL: the raw Event table partitioned by month (range on occurred_at).

Retention then drops whole months (a metadata change) instead of deleting millions of rows, and the
rollup's range scans touch one or two partitions. Partitions are created ahead by the maintenance task
(`ensure_partitions`); a `default` partition catches anything outside them (an event dated years back
by a demo loader), so an insert never fails for want of a partition. Other databases keep the plain
table: every function here does nothing on them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection

TABLE = "insights_event"
_NAME_LEN = len(TABLE) + len("_p000000")


def _month(d: date, add: int = 0) -> date:
    index = d.year * 12 + d.month - 1 + add
    return date(index // 12, index % 12 + 1, 1)


def _partition_name(month: date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def is_partitioned(conn=None) -> bool:
    conn = conn or connection
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                    "WHERE c.relname = %s AND pg_table_is_visible(c.oid)", [TABLE])
        return cur.fetchone() is not None


def partitions(conn=None) -> list[str]:
    conn = conn or connection
    if not is_partitioned(conn):
        return []
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s ORDER BY 1", [TABLE])
        return [row[0] for row in cur.fetchall()]


def ensure_partitions(*, start: date | None = None, months_ahead: int = 2, conn=None) -> list[str]:
    """Create the monthly partitions from `start`'s month to `months_ahead` after the current one.
    Rows of those months already sitting in the default partition are moved into the new one."""
    conn = conn or connection
    if not is_partitioned(conn):
        return []
    today = datetime.now(UTC).date()
    first = _month(start or today)
    last = _month(today, months_ahead)
    existing = set(partitions(conn))
    created = []
    month = first
    while month <= last:
        name = _partition_name(month)
        if name not in existing:
            _create_month(conn, name, month)
            created.append(name)
        month = _month(month, 1)
    return created


def _create_month(conn, name: str, month: date) -> None:
    lo, hi = month.isoformat(), _month(month, 1).isoformat()
    from django.db import transaction

    with transaction.atomic(using=conn.alias), conn.cursor() as cur:
        # A partition cannot be attached while the default one holds rows of its range: move them.
        cur.execute(f"CREATE TEMP TABLE _insights_move AS SELECT * FROM {TABLE}_default "  # noqa: S608
                    "WHERE occurred_at >= %s AND occurred_at < %s", [lo, hi])
        cur.execute(f"DELETE FROM {TABLE}_default WHERE occurred_at >= %s AND occurred_at < %s", [lo, hi])  # noqa: S608
        cur.execute(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [lo, hi])
        cur.execute(f"INSERT INTO {TABLE} SELECT * FROM _insights_move")  # noqa: S608
        cur.execute("DROP TABLE _insights_move")


def drop_before(cutoff: datetime, conn=None) -> list[str]:
    """Drop the monthly partitions that end before `cutoff` (retention); the rest is DELETEd by the
    caller. Returns the dropped names."""
    conn = conn or connection
    dropped = []
    for name in partitions(conn):
        suffix = name[len(TABLE) + 2:]
        if len(name) != _NAME_LEN or not suffix.isdigit():
            continue  # the default partition
        month = date(int(suffix[:4]), int(suffix[4:]), 1)
        end = datetime.combine(_month(month, 1), datetime.min.time(), tzinfo=UTC)
        if end <= cutoff:
            with conn.cursor() as cur:
                # Inside a longer transaction, rows inserted earlier still have their deferred foreign-key
                # checks queued, and PostgreSQL refuses to drop a table with pending trigger events.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.execute(f"DROP TABLE {name}")
            dropped.append(name)
    return dropped


# --- the migration ---------------------------------------------------------------------------

_COPY_COLUMNS = "id, occurred_at, type, user_id, team_id, subject, client, value, data"


def partition_table(apps, schema_editor) -> None:
    conn = schema_editor.connection
    if conn.vendor != "postgresql" or is_partitioned(conn):
        return
    with conn.cursor() as cur:
        cur.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_plain")
        # A partitioned table's primary key must include the partition key: (id, occurred_at). Django
        # still addresses rows by id, which stays unique (one identity sequence).
        cur.execute(f"CREATE TABLE {TABLE} (LIKE {TABLE}_plain INCLUDING DEFAULTS INCLUDING IDENTITY) "
                    "PARTITION BY RANGE (occurred_at)")
        cur.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id, occurred_at)")
        cur.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cur.execute(f"INSERT INTO {TABLE} ({_COPY_COLUMNS}) OVERRIDING SYSTEM VALUE "  # noqa: S608
                    f"SELECT {_COPY_COLUMNS} FROM {TABLE}_plain")
        cur.execute(f"DROP TABLE {TABLE}_plain CASCADE")
        _indexes_and_keys(cur)
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "  # noqa: S608
                    f"COALESCE((SELECT MAX(id) FROM {TABLE}), 0) + 1, false)")
    ensure_partitions(conn=conn)


def _indexes_and_keys(cur) -> None:
    cur.execute(f"CREATE INDEX insights_event_occurred_at ON {TABLE} (occurred_at)")
    cur.execute(f"CREATE INDEX insights_event_type_time ON {TABLE} (type, occurred_at)")
    cur.execute(f"CREATE INDEX insights_event_user ON {TABLE} (user_id)")
    cur.execute(f"CREATE INDEX insights_event_team ON {TABLE} (team_id)")
    cur.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT insights_event_user_fk FOREIGN KEY (user_id) "
                "REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED")
    cur.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT insights_event_team_fk FOREIGN KEY (team_id) "
                "REFERENCES accounts_team (id) DEFERRABLE INITIALLY DEFERRED")


def unpartition_table(apps, schema_editor) -> None:
    """The reverse: one plain table again, with its rows and the same indexes."""
    conn = schema_editor.connection
    if conn.vendor != "postgresql" or not is_partitioned(conn):
        return
    with conn.cursor() as cur:
        cur.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_parts")
        for name in ("occurred_at", "type_time", "user", "team"):
            cur.execute(f"DROP INDEX IF EXISTS insights_event_{name}")
        cur.execute(f"ALTER TABLE {TABLE}_parts DROP CONSTRAINT insights_event_user_fk")
        cur.execute(f"ALTER TABLE {TABLE}_parts DROP CONSTRAINT insights_event_team_fk")
        cur.execute(f"CREATE TABLE {TABLE} (LIKE {TABLE}_parts INCLUDING DEFAULTS INCLUDING IDENTITY)")
        cur.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)")
        cur.execute(f"INSERT INTO {TABLE} ({_COPY_COLUMNS}) OVERRIDING SYSTEM VALUE "  # noqa: S608
                    f"SELECT {_COPY_COLUMNS} FROM {TABLE}_parts")
        cur.execute(f"DROP TABLE {TABLE}_parts CASCADE")
        _indexes_and_keys(cur)
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "  # noqa: S608
                    f"COALESCE((SELECT MAX(id) FROM {TABLE}), 0) + 1, false)")
