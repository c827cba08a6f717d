"""The demo organisation's lineage (`manage.py demo lineage`, portal/lineage/demo.py): a week of the fraud
team's pipeline runs, through the ingest's own checks, joined to the demo catalog's declared Datasets and
Pipeline, owned by fraud-ml, idempotent, and readable in the graph API by the team."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from portal.lineage import demo, services
from portal.lineage.models import Event, Node, NodeType, Run, RunState

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # a Wednesday: the week holds one Monday training run


@pytest.fixture
def declared(demo_org):
    """What the catalog's commit hook does after `demo load` (the test's transaction never commits): the
    declared Datasets and Pipeline get their lineage nodes."""
    services.link_declared()
    return demo_org


def test_a_week_of_runs_joined_to_the_catalog_and_loaded_once(declared):
    demo_org = declared
    result = demo.load(now=NOW)
    assert result.stored == result.received == Event.objects.count() > 40 and result.duplicates == 0
    again = demo.load(now=NOW)
    assert (again.stored, again.duplicates) == (0, result.received), "the same day twice stores nothing"

    runs = Run.objects.select_related("job")
    states = {(r.job.name, r.state) for r in runs}
    assert ("etl.card_transactions_daily", RunState.FAIL) in states
    assert ("features.card_transaction_features", RunState.RUNNING) in states
    assert {r.job.name for r in runs if r.state == RunState.COMPLETE} == {j.name for j in demo.JOBS}
    assert runs.filter(job__name="training.fraud_detector").count() == 1  # weekly, on Monday
    failed = runs.get(state=RunState.FAIL)
    assert "payments-db.internal" in failed.error_message and failed.ended_at is not None
    assert not runs.filter(started_at__gte=NOW).exists(), "nothing after the load's now"

    # The catalog's declared Datasets and Pipeline are the nodes; the payment tables are observed,
    # owned by the team the ownership facet names.
    declared = dict(Node.objects.filter(entity__isnull=False).values_list("name", "entity__ref"))
    assert declared["fraud/transactions/2025"] == "dataset:default/card-transactions-2025"
    assert declared["fraud/chargebacks/2025"] == "dataset:default/chargebacks-2025"
    assert declared["training.fraud_detector"] == "pipeline:default/fraud-detector-training"
    tables = Node.objects.filter(type=NodeType.DATASET, namespace=demo.PAYMENTS_DB).select_related("entity__owner_team")
    assert tables.count() == 3 and {t.entity.owner_team.name for t in tables} == {"fraud-ml"}

    alice = Client()
    alice.force_login(demo_org["users"]["alice"])
    graph = alice.get("/api/v1/lineage", {"nodeId": "entity:dataset:default:card-transactions-2025",
                                           "depth": 2, "direction": "both"}).json()["graph"]
    ids = {node["id"] for node in graph}
    assert "job:airflow:etl.card_transactions_daily" in ids
    assert "dataset:postgres://payments-db.internal:5432:payments.public.transactions" in ids
    assert "job:airflow:features.card_transaction_features" in ids
    etl = next(node for node in graph if node["id"] == "job:airflow:etl.card_transactions_daily")
    assert etl["data"]["lastRun"]["state"] == "COMPLETE"  # the failure was days ago
    columns = alice.get("/api/v1/lineage/columns", {
        "nodeId": "dataset:s3://ml-data:fraud/transactions/2025", "column": "merchant_id", "direction": "upstream"})
    assert columns.status_code == 200 and "payments.public.merchants" in columns.content.decode(), columns.content


def test_the_demo_command_loads_it_and_says_so(demo_org):
    out = StringIO()
    call_command("demo", "lineage", stdout=out)
    assert "Demo lineage:" in out.getvalue() and Run.objects.exists()


def test_without_the_spec_the_demo_goes_on_and_says_why(demo_org, settings, tmp_path):
    settings.PLINTH_OPENLINEAGE_SPEC_DIR = str(tmp_path)
    out = StringIO()
    call_command("demo", "lineage", stdout=out)
    assert "Demo lineage not loaded" in out.getvalue() and str(tmp_path) in out.getvalue()
    assert not Run.objects.exists()
