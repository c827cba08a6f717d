"""Search fixtures: the demo organisation with its catalog indexed, on whichever database runs."""

from __future__ import annotations

import pytest
from django.db import connection

# Each backend-dependent test runs once per backend: on SQLite in the normal run, on PostgreSQL
# in the prod_smoke run (`make test`), and skips itself on the other database.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke),
]


@pytest.fixture(params=BACKENDS)
def backend_vendor(request) -> str:
    return request.param


@pytest.fixture
def indexed(demo_org, backend_vendor):
    """The demo org and catalog, with the search index rebuilt (on_commit does not run in `db` tests)."""
    if connection.vendor != backend_vendor:
        pytest.skip(f"runs on {backend_vendor}; this run uses {connection.vendor}")
    from portal.search import index

    index.rebuild()
    return demo_org


@pytest.fixture
def users(indexed):
    return indexed["users"]
