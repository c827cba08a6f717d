"""The stream's bodies on PostgreSQL (run by `make test`'s production-profile pass): there the database
composes them with jsonb_set (`catalog.export.Stored`), and they must still equal the paged list's."""


import pytest

from tests.catalog import test_export

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


@pytest.mark.parametrize("username", ["alice", "carol"])
def test_the_stream_equals_the_paged_listing_on_postgresql(demo_org, username, monkeypatch):
    test_export.test_the_stream_equals_the_paged_listing(demo_org, username, monkeypatch)


def test_a_checkpoint_resumes_on_postgresql(demo_org, monkeypatch):
    test_export.test_a_checkpoint_resumes_after_everything_before_it(demo_org, monkeypatch)
