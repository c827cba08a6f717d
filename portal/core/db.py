"""Database helpers shared by apps."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
import uuid

from django.db import OperationalError, connection, transaction

log = logging.getLogger("plinth.db")

BULK_CACHE_KIB = 1024 * 1024  # SQLite page cache for large writes: 1 GiB at most, used as needed


@contextlib.contextmanager
def bulk_write_cache(rows: int, threshold: int = 20_000, *, cache_kib: int | None = BULK_CACHE_KIB):
    """Give SQLite a page cache big enough for a large ingest, then hand the memory back; the
    write-ahead log the ingest filled is copied back into the database by a background thread.
    `cache_kib=None` keeps the page cache as it is (an ingest that appends, whose memory must stay
    bounded: the cost import) and only defers the copy-back.

    Inserting 250k entities touches a dozen B-trees of several hundred MB together; with the usual
    64 MiB cache most inserts re-read pages. PostgreSQL sizes its buffers itself: a no-op there."""
    if connection.vendor != "sqlite" or rows < threshold:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        # The commit of a large write would otherwise copy the whole log back itself (~2 s at 250k
        # entities) before the caller gets its answer; the data is committed, and seen by every
        # reader, as soon as it is in the log.
        cursor.execute("PRAGMA wal_autocheckpoint")
        (autocheckpoint,) = cursor.fetchone()
        cursor.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
            if not connection.in_atomic_block:  # committed (in an outer transaction: its commit copies)
                cursor.execute("PRAGMA database_list")
                path = next((file for _seq, name, file in cursor.fetchall() if name == "main"), "")
                cursor.execute("PRAGMA journal_mode")
                (mode,) = cursor.fetchone()
                if path and mode.lower() == "wal":
                    checkpoint_in_background(path)


@contextlib.contextmanager
def sqlite_pragmas(**values):
    """Set these PRAGMAs of this connection (SQLite; a no-op elsewhere), then put back what they were.
    Names and values are the caller's constants, never user input."""
    if connection.vendor != "sqlite":
        yield
        return
    previous = {}
    with connection.cursor() as cursor:
        for name, value in values.items():
            cursor.execute(f"PRAGMA {name}")
            previous[name] = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for name, value in previous.items():
                cursor.execute(f"PRAGMA {name} = {int(value)}")


@contextlib.contextmanager
def sorts_on_disk():
    """Let SQLite spill the sorts of this connection's large GROUP BYs to temporary files.

    The settings keep temporary storage in memory (fast for the page-sized sorts of requests), so a
    GROUP BY over ten million cost lines would sort them all in RAM: 2 GB of RSS in a worker. Its
    memory then stays within the page cache. PostgreSQL spills by work_mem itself: a no-op there, and
    inside a transaction too (SQLite refuses the change there: enter this before `atomic()`)."""
    if connection.in_atomic_block:
        yield
        return
    with sqlite_pragmas(temp_store="FILE"):
        yield


def forks_wait_for(lock: threading.Lock) -> None:
    """Make os.fork() (and the pools built on it) take `lock` first, so that no process is forked
    while a thread holding it is inside SQLite: SQLite keeps its file locks' bookkeeping in the
    library's memory, and a child would inherit locks nobody will ever release there."""
    os.register_at_fork(
        before=lock.acquire,
        after_in_parent=lock.release,
        # The child is a copy taken while the forking thread held the lock: free it there too.
        after_in_child=lock.release,
    )


# Held by a background checkpoint for as long as it runs (see portal.core.heartbeat for the same rule).
_checkpoint_guard = threading.Lock()
forks_wait_for(_checkpoint_guard)
_checkpoints: list[threading.Thread] = []
CHECKPOINT_TRUNCATE_WAIT = 1.0  # seconds


def checkpoint_in_background(path: str) -> threading.Thread:
    """Copy the write-ahead log of the SQLite database at `path` back into it and truncate it, in a
    thread with its own connection (the sqlite3 module lets other threads run meanwhile).

    Readers look pages up in the log's index, which grows with the log: after a write of hundreds
    of MB every page read of every process is slower (a 250k list page from 20 to 40 ms) until the
    log restarts. The thread is not a daemon: a command's process exits once the log is copied."""
    thread = threading.Thread(target=_checkpoint, args=(path,), name="plinth-wal-checkpoint")
    _checkpoints[:] = [t for t in _checkpoints if t.is_alive()] + [thread]
    thread.start()
    return thread


def _checkpoint(path: str) -> None:
    with _checkpoint_guard:
        try:
            db = sqlite3.connect(path, timeout=CHECKPOINT_TRUNCATE_WAIT)
            try:
                # PASSIVE copies every frame without waiting for anyone; once all are copied, new
                # readers ignore the log. TRUNCATE then empties the file, if it can soon: it waits
                # for readers of the log and holds writers back meanwhile.
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.close()
        except sqlite3.Error as exc:  # gone, or busy: the next commit (autocheckpoint) copies the rest
            log.warning("background checkpoint of %s failed: %s", path, exc)


def wait_for_checkpoints(timeout: float | None = None) -> None:
    """Block until the background checkpoints started so far are done."""
    for thread in list(_checkpoints):
        thread.join(timeout)


def serve_web_requests() -> None:
    """This process serves web requests (`portal.wsgi` calls this, so gunicorn and runserver do): each
    PostgreSQL session it opens stops waiting for a lock after `PLINTH_WEB_LOCK_TIMEOUT_SECONDS`.
    Workers and management commands never call it: a bulk load, a migration or a task waits as long as
    it must. Without it a page that reads a table a first large import holds (`DeferredIndexes`) waited
    for that import's commit, up to a minute or more, past gunicorn's worker timeout; with it, the
    request fails with `LockNotAvailable`, which `portal.core.views.server_error` answers as a 503 with a
    Retry-After. Set once per session (sessions live `CONN_MAX_AGE`), not per request."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_web_lock_timeout, dispatch_uid="plinth.web_lock_timeout")


def _web_lock_timeout(sender, connection, **kwargs) -> None:
    from django.conf import settings

    seconds = settings.PLINTH_WEB_LOCK_TIMEOUT_SECONDS
    if connection.vendor == "postgresql" and seconds > 0:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", [_pg_duration(seconds)])


def _pg_duration(seconds: float) -> str:
    """A PostgreSQL time setting's value (`lock_timeout`), in whole milliseconds."""
    return f"{seconds * 1000:.0f}ms"


def lock_not_available(exc: BaseException | None) -> bool:
    """Is this database error a lock wait that ran out (PostgreSQL's `lock_timeout`, SQLSTATE 55P03)?"""
    return getattr(getattr(exc, "__cause__", None), "sqlstate", None) == "55P03"


# DeferredIndexes on PostgreSQL: how long a bulk load waits for its tables' lock (seconds).
PG_LOCK_WAIT = 2.0


class DeferredIndexes:
    """A bulk load's secondary indexes, dropped inside the caller's transaction and created again
    before it commits.

    Filling a B-tree row by row in key order that jumps about costs two to three times what
    `CREATE INDEX` costs, which sorts the keys once. Constraints (UNIQUE, PRIMARY KEY) stay, and so do
    the `keep` indexes, which the load itself queries. Only worth it when the load is large next to
    what the table holds: `CREATE INDEX` reads every row, old and new. A rollback brings everything
    back.

    SQLite: other connections see none of it (WAL: they read the last commit, indexes and all); the
    tables' triggers can go too (`triggers`), for a load that does itself what they would do per row.
    At 250k entities the catalog's and the search index's tables are written ~6 s faster.

    PostgreSQL: the foreign keys between the tables go as well (a child row's key is otherwise
    checked by a locked lookup of its parent, one row at a time at the commit: 15.7 s of a
    250,000-entity registration; added again, the constraint checks every row in one join). Dropping
    takes the tables' ACCESS EXCLUSIVE lock to the commit, so readers of these tables wait for the
    load: `drop` waits at most PG_LOCK_WAIT for it (a long read in progress), and otherwise leaves
    everything as it was and the load goes on the slow way. Foreign keys to other tables (teams,
    locations) stay: dropping one would lock its parent table too."""

    def __init__(self, tables: list[str], keep: tuple[str, ...] = (), *, triggers: bool = False):
        self.tables, self.keep = tables, set(keep)
        # Triggers too, for a load that does itself what they would do for each row.
        self.types = ("index", "trigger") if triggers else ("index",)
        self.dropped: list[str] = []  # the statements that create them again, in order
        self.tried = False  # once per load: a lock not had in time is not waited for again each batch

    def drop(self) -> None:
        if not connection.in_atomic_block or self.tried:
            return
        self.tried = True
        if connection.vendor == "sqlite":
            self._drop_sqlite()
        elif connection.vendor == "postgresql":
            self._drop_postgres()

    def _drop_sqlite(self) -> None:
        marks = ", ".join(["%s"] * len(self.tables))
        with connection.cursor() as cursor:
            types = ", ".join(["%s"] * len(self.types))
            query = f"SELECT type, name, sql FROM sqlite_master WHERE type IN ({types}) AND sql IS NOT NULL AND tbl_name IN ({marks})"  # noqa: S608, E501 (placeholders only)
            cursor.execute(query + " ORDER BY type, name", [*self.types, *self.tables])
            for kind, name, sql in cursor.fetchall():
                if name not in self.keep:
                    cursor.execute(f'DROP {kind.upper()} "{name}"')
                    self.dropped.append(sql)

    def _drop_postgres(self) -> None:
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.relname, x.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid "
                "WHERE t.relname = ANY(%s) AND pg_table_is_visible(t.oid) AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY 1, 2", [self.tables])
            indexes = [(name, sql) for _, name, sql in cursor.fetchall() if name not in self.keep]
            cursor.execute(
                "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
                "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid "
                "WHERE c.contype = 'f' AND t.relname = ANY(%s) AND p.relname = ANY(%s) "
                "AND pg_table_is_visible(t.oid) ORDER BY 1, 2", [self.tables, self.tables])
            keys = cursor.fetchall()
            cursor.execute("SHOW lock_timeout")
            (timeout,) = cursor.fetchone()
            try:
                # A savepoint: a lock not had in time leaves all as it was, the setting included.
                with transaction.atomic():
                    cursor.execute("SET LOCAL lock_timeout = %s", [_pg_duration(PG_LOCK_WAIT)])
                    cursor.execute("LOCK TABLE " + ", ".join(quote(t) for t in self.tables) + " IN ACCESS EXCLUSIVE MODE")
                    for table, name, _ in keys:
                        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
                    for name, _ in indexes:
                        cursor.execute(f"DROP INDEX {quote(name)}")
                    cursor.execute("SET LOCAL lock_timeout = %s", [timeout])
            except OperationalError as exc:
                log.warning("bulk load: the tables' lock was not free within %s s (%s); indexes kept", PG_LOCK_WAIT, exc)
                return
        self.dropped = [sql for _, sql in indexes]
        self.dropped += [f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}" for table, name, definition in keys]

    def restore(self) -> None:
        if not self.dropped:
            return
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # CREATE INDEX refuses a table with deferred checks pending (the entities' keys to
                # their teams and locations): they run now instead of at the commit, then the
                # constraints are deferred again (every deferrable one here is initially deferred).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                # Each CREATE INDEX sorts its keys: in memory up to this, rather than in runs on disk.
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for sql in self.dropped:
                cursor.execute(sql)
        self.dropped = []


# analyze_grown: a write of at least this many rows, and more than this share of what a table held.
ANALYZE_MIN_ROWS = 10_000
ANALYZE_SHARE = 0.2


def analyze_grown(tables: list[str], rows: int) -> bool:
    """PostgreSQL: fresh planner statistics for `tables` after a write added `rows` to them, when that
    is many rows (ANALYZE_MIN_ROWS) and a large share (ANALYZE_SHARE) of what the statistics say they
    held. Run inside the writing transaction, so the rows it added count. Returns whether it analyzed.

    Autovacuum analyzes a grown table only a while after the commit; until then the planner takes it
    for the size it last saw (empty, after a first load) and plans for that. The lineage graph's
    refresh right after registering 250,000 entities took 47 s on such statistics, 16 s on fresh ones
    (cProfile, same run otherwise). `ANALYZE` samples a fixed number of rows: ~1.6 s for the catalog's
    and the search index's tables at 250k. Elsewhere nothing happens (SQLite's planner reads its
    indexes, not sampled statistics)."""
    if connection.vendor != "postgresql" or rows < ANALYZE_MIN_ROWS or not tables:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)", [tables])
        known = dict(cursor.fetchall())
        # reltuples: -1 for a table never analyzed (PostgreSQL 14 and later), 0 before 14.
        stale = [t for t in tables if t in known and rows > ANALYZE_SHARE * max(known[t], 0)]
        if stale:
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in stale))
    return bool(stale)


def _uuid7_values(count: int) -> list[int]:
    """`count` version-7 UUIDs as integers, from one clock read and one draw of random bytes."""
    millis = (time.time_ns() // 1_000_000) & ((1 << 48) - 1)
    head = millis << 80 | 0x7 << 76
    raw = secrets.token_bytes(10 * count)
    mask_a, mask_b, variant = (1 << 12) - 1, (1 << 62) - 1, 0b10 << 62
    return [head | (int.from_bytes(raw[i:i + 2]) & mask_a) << 64 | variant | int.from_bytes(raw[i + 2:i + 10]) & mask_b
            for i in range(0, 10 * count, 10)]


def time_ordered_uuids(count: int) -> list[uuid.UUID]:
    """`count` version-7 UUIDs at once (a bulk insert needs hundreds of thousands)."""
    return [uuid.UUID(int=value) for value in _uuid7_values(count)]


def time_ordered_hexes(count: int) -> list[str]:
    """The same as 32-digit hex strings, as SQLite stores a UUIDField (no UUID objects made)."""
    return [f"{value:032x}" for value in _uuid7_values(count)]


def time_ordered_uuid() -> uuid.UUID:
    """A version-7 UUID (48-bit Unix milliseconds, then random bits): unique like uuid4, but ids made
    together sort together, so a bulk insert appends to the unique index instead of scattering."""
    return time_ordered_uuids(1)[0]


def _rows_of(values, text: bool) -> tuple[str, list]:
    """A list as ONE bound parameter and the set-returning call that reads it back as rows:
    `unnest(%s::T[])` of an array literal on PostgreSQL, `json_each(%s)` of a JSON array on SQLite."""
    if connection.vendor == "postgresql":
        return f"unnest(%s::{'text' if text else 'bigint'}[])", [pg_array(values, text=text)]
    return "json_each(%s)", [json.dumps([str(v) for v in values] if text else [int(v) for v in values])]


def values_in(values, *, text: bool = False):
    """The right side of `field__in=` for a long list (a batch of 2,000 ids or refs) as ONE bound
    parameter: a JSON array read by `json_each` on SQLite, an array `unnest`ed on PostgreSQL. Django
    prepares, normalises and binds every element of a plain list one by one: for a scorecard batch's
    dozen `__in` filters of 2,000 ids that cost ~17 ms each, a third of the nightly evaluation."""
    from django.db.models.expressions import RawSQL

    rows, params = _rows_of(values, text)
    select = f"SELECT {rows}" if connection.vendor == "postgresql" else f"SELECT value FROM {rows}"  # noqa: S608 (fixed SQL)
    return RawSQL(select, params)  # noqa: S611 (fixed SQL)


def values_table(values, *, text: bool = False) -> tuple[str, list]:
    """A long list as a table `v(value)` for a FROM clause, and its one parameter (see `_rows_of`).
    Joined to, it lets the planner choose a merge or hash join when the list is long, where
    `IN (SELECT unnest(...))` is planned for a couple of hundred values and probes an index once per
    value."""
    rows, params = _rows_of(values, text)
    return f"{rows} AS v(value)" if connection.vendor == "postgresql" else f"{rows} AS v", params


def pg_array(values, *, text: bool = False) -> str:
    """A PostgreSQL array literal of `values` (ints, or strings when `text`), to be sent as ONE string
    parameter and cast (`%s::text[]`, `%s::bigint[]`). Django binds parameters on the client, and
    psycopg quotes a Python list element by element with a regular expression each: ~2.2 µs per
    element, 7 s of a 250k registration, against ~0.3 µs here. Elements are double-quoted with
    backslashes and double quotes escaped, so any text round-trips; NUL cannot be in a PostgreSQL text."""
    if text:
        return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
    return "{" + ",".join(str(int(v)) for v in values) + "}"


VALUES_ROWS = 500  # rows per INSERT statement on PostgreSQL (execute_values)


def execute_values(head: str, rows: list[tuple], tail: str = "") -> None:
    """`head` (`INSERT INTO t (a, b) VALUES `) with a parenthesised row per tuple, then `tail` (`ON
    CONFLICT …`). SQLite: executemany of the one-row statement (compiled once, stepped per row, in
    process). PostgreSQL: VALUES_ROWS rows a statement. There executemany sends a statement per row
    (Django binds parameters on the client), each parsed, planned and executed by the server on its
    own: per row, that cost more than the write. With a `tail` that updates on conflict, no two rows
    may share the conflict key (one statement cannot update a row twice)."""
    if not rows:
        return
    marks = f"({', '.join(['%s'] * len(rows[0]))})"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(head + marks + tail, rows)
            return
        for start in range(0, len(rows), VALUES_ROWS):
            chunk = rows[start:start + VALUES_ROWS]
            cursor.execute(head + ", ".join([marks] * len(chunk)) + tail, [value for row in chunk for value in row])


def insert_values(model, columns: list[str], rows: list[tuple], tail: str = "") -> None:
    """INSERT `rows` into `model`'s table, `columns` in order, through `execute_values`; `tail`: an
    `ON CONFLICT …` clause."""
    quote = connection.ops.quote_name
    execute_values(f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) VALUES ",  # noqa: S608
                   rows, tail)


def update_values(model, columns: list[str], rows: list[tuple]) -> None:
    """UPDATE `columns` of `model`'s rows, each row `(*values, id)`, given in id order (the order every
    writer locks rows in). SQLite: executemany of the one-row UPDATE. PostgreSQL: VALUES_ROWS rows a
    statement joined to a VALUES list (cast to the columns' types), after a `FOR UPDATE` that takes
    their locks in id order (the join's order is the planner's)."""
    if not rows:
        return
    quote, table = connection.ops.quote_name, connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            sets = ", ".join(f"{quote(c)} = %s" for c in columns)
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE id = %s", rows)  # noqa: S608
            return
        types = [model._meta.get_field(c).db_type(connection) for c in columns]
        sets = ", ".join(f"{quote(c)} = v.c{i}::{t}" for i, (c, t) in enumerate(zip(columns, types, strict=True)))
        names = ", ".join([*(f"c{i}" for i in range(len(columns))), "id"])
        marks = f"({', '.join(['%s'] * (len(columns) + 1))})"
        for start in range(0, len(rows), VALUES_ROWS):
            chunk = rows[start:start + VALUES_ROWS]
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",  # noqa: S608
                           [pg_array([row[-1] for row in chunk])])
            cursor.execute(f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([marks] * len(chunk))}) "  # noqa: S608
                           f"AS v({names}) WHERE {table}.id = v.id::bigint", [value for row in chunk for value in row])


class PreparedRow:
    """A one-row ORM read, built by the ORM once per database and run as plain SQL afterwards.

    Building a query costs the ORM far more than the database spends on an indexed row (0.4–0.6 ms
    against ~0.04 ms for the bearer-token lookup every API request makes: docs/deployment.md, "Request
    latency"). `build(mark)` returns the query with `mark` as its only parameter, with at most one
    level of `select_related`; `first(value)` runs its statement with `value` in the mark's place and
    builds the instances as the ORM would (the backend's converters applied, related rows attached),
    or returns None."""

    MARK = "\x00plinth-parameter\x00"

    def __init__(self, build):
        self._build = build
        self._plans: dict[tuple[str, str], tuple] = {}

    def _plan(self, alias: str) -> tuple:
        from django.db import connections

        key = (alias, connections[alias].vendor)
        plan = self._plans.get(key)
        if plan is None:
            query = self._build(self.MARK).using(alias).order_by()[:1].query
            compiler = query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            if list(params) != [self.MARK]:  # the statement must take the value as its one parameter
                raise RuntimeError(f"unexpected parameters in a prepared statement: {params!r}")
            columns = [selected[0] for selected in compiler.select]
            info = compiler.klass_info

            def part(klass) -> tuple:
                return klass["model"], [columns[i].target.attname for i in klass["select_fields"]], klass["select_fields"]

            related = []
            for klass in info.get("related_klass_infos") or []:
                if klass.get("related_klass_infos"):
                    raise RuntimeError("a prepared row takes one level of select_related")
                related.append((*part(klass), klass["local_setter"], klass["remote_setter"]))
            plan = self._plans[key] = (query, sql, columns, part(info), related)
        return plan

    def first(self, value, alias: str = "default"):
        from django.db import connections

        query, sql, columns, (model, names, positions), related = self._plan(alias)
        db = connections[alias]
        with db.cursor() as cursor:
            cursor.execute(sql, [value])
            row = cursor.fetchone()
        if row is None:
            return None
        compiler = db.ops.compiler("SQLCompiler")(query, db, alias)
        converters = compiler.get_converters(columns)
        if converters:
            row = next(iter(compiler.apply_converters([row], converters)))
        obj = model.from_db(alias, names, [row[i] for i in positions])
        for rel_model, rel_names, rel_positions, local_setter, remote_setter in related:
            values = [row[i] for i in rel_positions]
            rel_obj = None if values[0] is None else rel_model.from_db(alias, rel_names, values)
            local_setter(obj, rel_obj)
            if rel_obj is not None:
                remote_setter(rel_obj, obj)
        return obj
