"""The results cache on PostgreSQL (migration 0008, `PostgresBackend.index_version`): a sequence that every
index-writing statement advances, and a shared advisory lock each writer holds until its transaction
ends. Results are cached between writes; while another connection's index write is uncommitted nothing
is cached, so its commit is never hidden behind results read before it (real connections, outside any
test transaction)."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from portal.search import selectors
from portal.search.backends import get_backend
from portal.search.models import SearchDocument

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only")]
FRAUD = "model:default/fraud-detector"


@pytest.fixture
def users(transactional_db):
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo
    from portal.search import index

    org = org_demo.load_org()
    assert not catalog_demo.load_catalog().errors
    index.rebuild()
    selectors.clear_cache()
    yield org["users"]
    selectors.clear_cache()


def keys(results) -> list[str]:
    return [h.key for h in results.hits]


def _full_text(queries) -> int:
    return sum(1 for q in queries if "tsv @@" in q["sql"])


def test_a_repeated_search_is_answered_from_the_cache_until_the_index_changes(users):
    backend, alice = get_backend(), users["alice"]
    first_version = backend.index_version()
    assert isinstance(first_version, int)
    assert keys(selectors.search(alice, "fraud detector"))[0] == FRAUD
    with CaptureQueriesContext(connection) as again:
        assert keys(selectors.search(alice, "fraud detector"))[0] == FRAUD
    assert _full_text(again.captured_queries) == 0, "answered from the cache"
    # Any statement on the index tables moves the version, whatever code path runs it.
    SearchDocument.objects.filter(key=FRAUD).update(title="Zebra scorer")
    assert backend.index_version() != first_version
    with CaptureQueriesContext(connection) as after:
        assert FRAUD in keys(selectors.search(alice, "zebra"))
    assert _full_text(after.captured_queries) > 0


@contextlib.contextmanager
def _uncommitted_title(key: str, title: str):
    """Another connection renames a document in a transaction that stays open until the block ends, then
    commits; a failure on its side is raised here."""
    written, commit, failure = threading.Event(), threading.Event(), []

    def writer():
        try:
            with transaction.atomic():
                SearchDocument.objects.filter(key=key).update(title=title)
                written.set()
                assert commit.wait(30)
        except Exception as exc:  # reported to the test
            failure.append(exc)
            written.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert written.wait(30) and not failure, failure
        yield
    finally:
        commit.set()
        thread.join(30)
    assert not failure, failure


def test_nothing_is_cached_while_another_connection_has_an_uncommitted_index_write(users):
    """The reader sees the old rows while the writer's transaction is open; had it cached them under the
    moved version, the search after the commit would still miss the renamed document."""
    backend, alice = get_backend(), users["alice"]
    assert FRAUD not in keys(selectors.search(alice, "zebra"))
    with _uncommitted_title(FRAUD, "Zebra scorer"):
        assert backend.index_version() is None, "a writer is open: nothing may be cached"
        assert FRAUD not in keys(selectors.search(alice, "zebra"))  # the old rows, not cached
    assert isinstance(backend.index_version(), int)
    assert FRAUD in keys(selectors.search(alice, "zebra"))


def test_a_rolled_back_write_moves_the_version_and_leaves_the_rows(users):
    backend, alice = get_backend(), users["alice"]
    before = backend.index_version()
    with pytest.raises(RuntimeError), transaction.atomic():
        SearchDocument.objects.filter(key=FRAUD).update(title="Zebra scorer")
        assert backend.index_version() is None, "inside a transaction: never cached"
        raise RuntimeError("roll back")
    after = backend.index_version()
    assert isinstance(after, int) and after != before  # a sequence does not go back: no reuse
    assert FRAUD not in keys(selectors.search(alice, "zebra"))
    assert keys(selectors.search(alice, "fraud detector"))[0] == FRAUD


def test_concurrent_index_writers_do_not_wait_for_each_other(users):
    """Writers share the lock: a second connection writes while the first one's write is uncommitted."""
    done = []

    def second():
        try:
            with connection.cursor() as cur:
                cur.execute("SET lock_timeout = '2s'")
            SearchDocument.objects.exclude(key=FRAUD).filter(kind="model").update(title="Second")
            done.append(True)
        finally:
            connections.close_all()

    with _uncommitted_title(FRAUD, "First"):
        other = threading.Thread(target=second)
        other.start()
        other.join(10)
        assert done == [True], "the second writer waited for the first"
