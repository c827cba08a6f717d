"""The lineage writes on PostgreSQL (run by `make test`'s production-profile pass): the ON CONFLICT
upserts of edges and column edges, bulk ids of runs, jsonb payloads, and idempotency."""

import os

import pytest

from tests.lineage import test_bad_input as bad
from tests.lineage import test_ingest as ingest

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _postgres_only():
    from django.db import connection

    if not os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is not set; `make test` runs this subset against PostgreSQL")
    assert connection.vendor == "postgresql"


def test_idempotency_and_run_merging_on_postgresql(api):
    ingest.test_resending_is_idempotent_and_a_late_start_does_not_undo_complete(api)


def test_column_edges_and_cycles_on_postgresql(api):
    ingest.test_column_lineage_becomes_column_edges_and_cycles_are_stored(api)


def test_credentials_stripped_on_postgresql(api):
    ingest.test_credentials_in_namespaces_are_stripped_before_anything_is_stored(api)


def test_real_dbt_events_on_postgresql(api, compat):
    ingest.test_dbt_runs_recorded_from_the_real_integration_build_a_graph(api, compat)


def test_a_failed_write_rolls_back_on_postgresql(api, monkeypatch):
    bad.test_a_failure_while_storing_rolls_the_whole_batch_back(api, monkeypatch)
