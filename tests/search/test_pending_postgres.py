"""PostgreSQL's GIN indexes keep new entries in a pending list that every search scans until it is
merged; after a 250k rebuild typeahead took ~95 ms instead of ~9 until autovacuum came by. Large index
writes merge it (`PostgresBackend.flush_pending`: a rebuild before it commits, a large registration
right after); small ones leave it to the
database, which merges it itself when it grows (run by `make test`'s production-profile pass)."""

import pytest
from django.db import connection

from catalog import services as catalog_services
from portal.search import index
from portal.search.backends import get_backend
from tests.catalog.conftest import write_tree  # noqa: F401 (a fixture, used below)
from tests.catalog.test_bulk_ingestion import _tree
from tests.factories import write_files

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only"), pytest.mark.django_db]


def _pending() -> int:
    """The pages waiting in the search tables' GIN pending lists (merged by asking: a second call says 0)."""
    return get_backend().flush_pending()


def test_a_rebuild_leaves_nothing_pending_while_a_small_write_may(demo_org, tmp_path):
    index.rebuild()
    assert _pending() == 0, "the rebuild merged its pending entries before it committed"
    # The check can tell: an incremental write (a few documents) leaves its entries pending.
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: pending-probe, title: Pending probe}\n"
        "spec: {type: service, lifecycle: experimental, owner: fraud-ml}\n")})
    catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    index.update("catalog", changed=["component:default/pending-probe"])
    assert _pending() > 0


def test_a_large_registration_into_a_large_catalog_merges_what_its_indexes_set_aside(
        write_tree, monkeypatch, django_capture_on_commit_callbacks):  # noqa: F811 (the fixture)
    """A catalog too large for the bulk load keeps its indexes during a registration; a registration
    of more than BULK_THRESHOLD documents merges the pending entries it made once it has committed
    (outside its transaction, so its locks are not held for the merge)."""
    monkeypatch.setattr(catalog_services, "STREAM_BATCH", 4)
    monkeypatch.setattr(catalog_services, "BULK_LOAD_BELOW", 0)  # as in a catalog of 20,000 or more
    monkeypatch.setattr(index, "BULK_THRESHOLD", 10)
    with django_capture_on_commit_callbacks(execute=True):
        plan = catalog_services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(plan.added) == 26
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM search_searchdocument WHERE key LIKE 'component:default/service-%%'")
        assert cursor.fetchone()[0] > 10
    assert _pending() == 0


def test_a_role_that_does_not_own_the_indexes_gets_a_warning_and_the_write_goes_on(demo_org, caplog):
    """Only the owner of an index (or a superuser) may merge its pending list. A portal whose database
    role does not own the search tables still rebuilds; the merge is skipped with a warning."""
    import logging
    import uuid

    import psycopg

    params = connection.settings_dict
    role = f"plinth_not_owner_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(dbname=params["NAME"], user="postgres", host=params["HOST"], port=params["PORT"] or None,
                            autocommit=True)  # the test server's superuser (tests/services.py: trust on loopback)
    try:
        admin.execute(f'CREATE ROLE "{role}"')
        admin.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        admin.execute(f'GRANT "{role}" TO "{params["USER"]}"')
        with connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{role}"')
        try:
            with caplog.at_level(logging.WARNING, logger="plinth.search"):
                assert get_backend().flush_pending() == 0
            with connection.cursor() as cursor:  # the transaction is still usable
                cursor.execute("SELECT 1")
                assert cursor.fetchone() == (1,)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
        assert "pending entries were not merged" in caplog.text and "must be owner" in caplog.text
        assert get_backend().flush_pending() >= 0  # the owner again: merges without a warning
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()
