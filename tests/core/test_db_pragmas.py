"""portal.core.db's SQLite switches for large writes: each changes only what it says, only where SQLite
allows it, and puts the connection back as it was."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from portal.core.db import bulk_write_cache, sorts_on_disk


def pragma(name: str):
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


@pytest.fixture
def sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")


@pytest.mark.django_db(transaction=True)
def test_sorts_go_to_disk_outside_a_transaction_and_back_to_memory_after(sqlite):
    before = pragma("temp_store")
    assert before == 2  # the settings' MEMORY
    with sorts_on_disk():
        assert pragma("temp_store") == 1  # FILE
    assert pragma("temp_store") == before
    with transaction.atomic(), sorts_on_disk():  # SQLite refuses the change in a transaction: left alone
        assert pragma("temp_store") == before


@pytest.mark.django_db(transaction=True)
def test_a_bounded_bulk_write_keeps_the_page_cache_and_defers_checkpoints(sqlite):
    cache, checkpoint = pragma("cache_size"), pragma("wal_autocheckpoint")
    with bulk_write_cache(rows=100_000, cache_kib=None):
        assert pragma("cache_size") == cache and pragma("wal_autocheckpoint") == 0
    assert (pragma("cache_size"), pragma("wal_autocheckpoint")) == (cache, checkpoint)


@pytest.mark.django_db(transaction=True)
def test_pragmas_are_put_back_even_when_the_block_fails(sqlite):
    from portal.core.db import sqlite_pragmas

    before = (pragma("synchronous"), pragma("cache_size"))
    with pytest.raises(RuntimeError), sqlite_pragmas(synchronous="OFF", cache_size=-4096):
        assert (pragma("synchronous"), pragma("cache_size")) == (0, -4096)
        raise RuntimeError("the block failed")
    assert (pragma("synchronous"), pragma("cache_size")) == before
