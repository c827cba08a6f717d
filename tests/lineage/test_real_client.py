"""The real `openlineage-python` client, configured with its HTTP transport and a Plinth token, sends to a
live Plinth server unchanged: its START and COMPLETE arrive as a run, edges and observed entities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import ownership_job, schema_dataset, sql_job
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid
from requests import HTTPError

from catalog.models import Entity
from portal.accounts import services as account_services
from portal.accounts.models import Role
from portal.lineage.models import Edge, Node
from portal.lineage.models import Run as StoredRun
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _client(url: str, token: str) -> OpenLineageClient:
    config = HttpConfig(url=url, timeout=10, auth=ApiKeyTokenProvider({"apiKey": token}))
    return OpenLineageClient(transport=HttpTransport(config))


def test_start_and_complete_from_the_real_client(live_server):
    team = TeamFactory(name="analytics")
    user = UserFactory(username="ci-bot")
    MembershipFactory(user=user, team=team, role=Role.MEMBER)
    _, token = account_services.token_create(user=user, name="openlineage")
    client = _client(live_server.url, token)

    run = Run(runId=str(generate_new_uuid()))
    job = Job(namespace="dagster", name="daily_revenue", facets={
        "sql": sql_job.SQLJobFacet(query="insert into revenue select sum(amount) from orders"),
        "ownership": ownership_job.OwnershipJobFacet(owners=[ownership_job.Owner(name="team:analytics")])})
    orders = InputDataset(namespace="postgres://reporter:s3cr3t@warehouse:5432", name="shop.public.orders",
                          facets={"schema": schema_dataset.SchemaDatasetFacet(fields=[
                              schema_dataset.SchemaDatasetFacetFields(name="amount", type="numeric")])})
    revenue = OutputDataset(namespace="s3://finance-lake", name="marts/revenue")
    started = datetime.now(UTC) - timedelta(minutes=3)
    producer = "https://github.com/acme/pipelines"
    client.emit(RunEvent(eventType=RunState.START, eventTime=started.isoformat(), run=run, job=job,
                         producer=producer, inputs=[orders], outputs=[revenue]))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=(started + timedelta(seconds=95)).isoformat(),
                         run=run, job=job, producer=producer, inputs=[orders], outputs=[revenue]))

    stored = StoredRun.objects.get(run_id=run.runId)
    assert stored.state == "COMPLETE" and round(stored.duration_seconds) == 95
    assert stored.job_facets["sql"]["query"].startswith("insert into revenue")
    job_node = Node.objects.get(type="job", namespace="dagster", name="daily_revenue")
    source = Node.objects.get(type="dataset", name="shop.public.orders")
    assert source.namespace == "postgres://warehouse:5432"  # the password never reached storage
    assert source.facets["schema"]["fields"][0]["name"] == "amount"
    assert Edge.objects.filter(source=source, target=job_node, run=stored).exists()
    assert Edge.objects.filter(source=job_node, target__name="marts/revenue", run=stored).exists()
    pipeline = Entity.objects.get(pk=job_node.entity_id)
    assert pipeline.kind == "Pipeline" and pipeline.owner_team == team
    assert Entity.objects.get(pk=source.entity_id).kind == "Dataset"
    assert not Entity.objects.filter(data__icontains="s3cr3t").exists()


def test_the_real_client_sees_a_refusal(live_server):
    """A token without the edit right: the client's transport raises on the 403 (nothing stored)."""
    user = UserFactory(username="reader")
    _, token = account_services.token_create(user=user, name="openlineage")
    client = _client(live_server.url, token)
    event = RunEvent(eventType=RunState.START, eventTime=datetime.now(UTC).isoformat(),
                     run=Run(runId=str(generate_new_uuid())), job=Job(namespace="x", name="y"),
                     producer="https://github.com/acme/pipelines")
    with pytest.raises(HTTPError) as refused:
        client.emit(event)
    assert refused.value.response.status_code == 403
    assert not Node.objects.exists()
