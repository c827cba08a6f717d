"""Database helpers shared by apps."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid

from django.db import connection

BULK_CACHE_KIB = 1024 * 1024  # SQLite page cache for large writes: 1 GiB at most, used as needed


@contextlib.contextmanager
def bulk_write_cache(rows: int, threshold: int = 20_000):
    """Give SQLite a page cache big enough for a large ingest, then hand the memory back (and
    reset the write-ahead log the ingest filled).

    Inserting 250k entities touches a dozen B-trees of several hundred MB together; with the usual
    64 MiB cache most inserts re-read pages. PostgreSQL sizes its buffers itself: a no-op there."""
    if connection.vendor != "sqlite" or rows < threshold:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
            if not connection.in_atomic_block:
                # Readers look pages up in the write-ahead log's index, which grows with the log: after
                # a write of hundreds of MB every page read of every process slows down (a 250k list
                # page from 20 to 40 ms) until the log restarts. Copy it back and truncate it now.
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def time_ordered_uuid() -> uuid.UUID:
    """A version-7 UUID (48-bit Unix milliseconds, then random bits): unique like uuid4, but ids made
    together sort together, so a bulk insert appends to the unique index instead of scattering."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | secrets.randbits(12) << 64 | 0b10 << 62 | secrets.randbits(62)
    return uuid.UUID(int=value)
