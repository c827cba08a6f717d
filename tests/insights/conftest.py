"""Insights fixtures: a fresh capture buffer per test, flushed on demand; and `on_each_backend`, for
tests that run on SQLite in the normal run and again on PostgreSQL in the prod_smoke run."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture
def capture_buffer(settings):
    """The in-process capture buffer, empty; `flush()` writes it (the suite runs no flusher thread)."""
    from portal.insights import capture

    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = None
    capture._state.pop("buffer", None)  # what earlier set-up recorded is not this test's
    buf = capture._buffer()
    yield buf
    capture._state.pop("buffer", None)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke),
]


@pytest.fixture(params=BACKENDS)
def on_each_backend(request) -> str:
    """The canvas's KPI queries, the demo purge's JSON lookups and the savepoint that keeps a failed
    KPI query from aborting the page's transaction all depend on the database: use on both."""
    if connection.vendor != request.param:
        pytest.skip(f"runs on {request.param}; this run uses {connection.vendor}")
    return request.param
