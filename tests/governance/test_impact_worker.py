"""Deprecate requests against the lineage graph, run by a real Celery worker on Redis: a dataset that
feeds a production model is blocked by downstream_impact with the model named; one that feeds only a
dev model warns and goes to review; a private production model of another team blocks without being
named to the requester; the snapshot is on the request page (each reader sees what they may); the
downstream owners are notified once per request."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.governance import services
from portal.governance.models import ApprovalRequest, Notification, PolicyResult, RequestImpact, State
from tests.conftest import start_celery_worker

from . import impact_world
from .conftest import client_for, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(demo_org, tmp_path, redis_url):
    impact_world.register(tmp_path / "impact")
    worker = start_celery_worker(redis_url)
    try:
        yield demo_org["users"]
    finally:
        worker.stop()


def settled(pk: int) -> ApprovalRequest:
    wait_for(lambda: ApprovalRequest.objects.get(pk=pk).state != State.PENDING, what="the gates on the worker")
    return ApprovalRequest.objects.get(pk=pk)


def deprecate(users, name: str, user: str = "alice") -> ApprovalRequest:
    req = services.request_create(actor=users[user], action="deprecate", target=f"dataset:default/{name}",
                                  params={"reason": "replaced by the 2026 extract"})
    return settled(req.pk)


def gate(req) -> PolicyResult:
    return PolicyResult.objects.get(request=req, gate="downstream_impact")


def test_a_dataset_feeding_a_production_model_is_blocked_with_the_model_named(world):
    req = deprecate(world, "impact-prod-src")
    assert req.state == State.BLOCKED
    assert "Blocked by downstream_impact" in req.gate_error
    assert "production model model:default/impact-ranker (team recsys) depends on the target" in req.gate_error
    result = gate(req)
    assert result.blocking
    assert {"rule": "critical:model:default/impact-ranker", "pass": False,
            "message": "production model model:default/impact-ranker (team recsys) depends on the target: "
                       "it would break"} in result.rules
    snapshot = RequestImpact.objects.get(request=req)
    assert snapshot.error == "" and snapshot.total == 1 and snapshot.critical == 1
    assert snapshot.items[0]["ref"] == "model:default/impact-ranker"
    assert snapshot.items[0]["reason"] == "production model"


def test_a_dataset_feeding_only_a_dev_model_warns_and_goes_to_review(world):
    req = deprecate(world, "impact-dev-src")
    assert req.state == State.IN_REVIEW, req.gate_error
    result = gate(req)
    assert not result.passed and not result.blocking
    api = client_for(world["alice"]).get(f"/api/v1/approval-requests/{req.pk}").json()
    assert next(r for r in api["policyResults"] if r["gate"] == "downstream_impact")["blocking"] is False
    warning = next(r for r in result.rules if not r["pass"])
    assert warning["severity"] == "warn"
    assert warning["message"] == ("3 downstream assets depend on the target: 1 dataset, 1 model, 1 pipeline; "
                                  "their owners are notified")
    snapshot = RequestImpact.objects.get(request=req)
    assert sorted((i["ref"], i["distance"]) for i in snapshot.items) == [
        ("dataset:default/impact-churn-scores", 2), ("model:default/impact-churn", 1),
        ("pipeline:default/impact-churn-scoring", 1)]


def test_owners_of_downstream_assets_are_notified_once(world):
    req = deprecate(world, "impact-dev-src")
    wait_for(lambda: Notification.objects.filter(request=req, kind="impact").count() == 2,
             what="the downstream owners' notifications")
    notes = {n.user.username: n for n in Notification.objects.filter(request=req, kind="impact").select_related("user")}
    assert set(notes) == {"carol", "dan"}  # recsys owns the models; alice (requester, fraud-ml) is not told
    # The target by its title (the descriptor's `Impact dev source`), not its ref.
    assert notes["carol"].message.startswith(f"#{req.pk} deprecate Impact dev source: 3 assets of your team")
    assert notes["carol"].target_url == req.get_absolute_url()
    # Delivered again (the outbox relay, a redelivery): nobody is notified twice.
    from portal.governance import tasks

    assert tasks.notify.apply(args=[req.pk, "impact", 0]).get() == 0
    assert Notification.objects.filter(request=req, kind="impact").count() == 2


def test_a_hidden_production_model_blocks_without_its_name(world):
    """alice may not see recsys's private model: the gate counts it ("1 production model you cannot
    see") and nothing she reads names it; carol, in recsys, finds it in the impact list."""
    req = deprecate(world, "impact-hidden-src")
    assert req.state == State.BLOCKED
    assert "secret" not in req.gate_error
    result = gate(req)
    assert {"rule": "hidden:production-model", "pass": False,
            "message": "1 production model you cannot see depends on the target: it would break"} in result.rules
    assert "secret" not in str(result.rules)

    page = client_for(world["alice"]).get(req.get_absolute_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert "1 production model you cannot see" in html
    assert 'data-testid="impact-hidden">1 hidden' in html
    assert "secret" not in html.lower()

    owner_page = client_for(world["carol"]).get(req.get_absolute_url()).content.decode()
    assert "model:default/impact-secret-ranker" in owner_page  # in the list, for a reader who may see it
    assert 'data-testid="impact-hidden"' not in owner_page

    # The API says the same to each reader.
    api = client_for(world["alice"]).get(f"/api/v1/approval-requests/{req.pk}").json()
    assert api["impact"]["total"] == 1 and api["impact"]["hidden"] == 1 and api["impact"]["items"] == []
    assert api["impact"]["hiddenCritical"] == ["1 production model"]
    assert "secret" not in str(api)
    gate_result = next(r for r in api["policyResults"] if r["gate"] == "downstream_impact")
    assert gate_result["blocking"] is True
    api = client_for(world["carol"]).get(f"/api/v1/approval-requests/{req.pk}").json()
    assert [i["ref"] for i in api["impact"]["items"]] == ["model:default/impact-secret-ranker"]
    assert api["impact"]["hidden"] == 0


def test_the_request_page_shows_the_snapshot_as_it_was(world, tmp_path):
    """The list is what the graph said when the gates ran: the model's owner leaving the lineage later
    does not change it."""
    req = deprecate(world, "impact-prod-src")
    client = client_for(world["erin"])
    html = client.get(req.get_absolute_url()).content.decode()
    assert 'data-testid="request-impact"' in html
    assert "/catalog/model/default/impact-ranker/" in html and "production model" in html
    with CaptureQueriesContext(connection) as first:
        assert client.get(req.get_absolute_url()).status_code == 200
    # The model stops being trained on the dataset: the stored list keeps it.
    (tmp_path / "impact" / "catalog-info.yaml").write_text(
        impact_world.DESCRIPTORS.replace("trainedOn: [impact-prod-src]", "trainedOn: []"), encoding="utf-8")
    from catalog import services as catalog_services
    from catalog.models import Location

    catalog_services.location_refresh(location=Location.objects.get(target__endswith="impact/catalog-info.yaml"),
                                      actor=None)
    again = client.get(req.get_absolute_url())
    assert "/catalog/model/default/impact-ranker/" in again.content.decode()
    with CaptureQueriesContext(connection) as second:
        client.get(req.get_absolute_url())
    assert len(second.captured_queries) == len(first.captured_queries)
