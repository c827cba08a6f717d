"""The API and the pages: create, read, decide, withdraw, audit events, CSRF, 404/409, the inbox."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from portal.core.models import AuditEvent
from portal.governance.models import ApprovalRequest, Decision, State

pytestmark = pytest.mark.django_db

BODY = {
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
    "justification": "AUC +0.02",
}


def post(client, url, data):
    return client.post(url, data=json.dumps(data), content_type="application/json")


@pytest.fixture
def submitted(fraud_versions, users, as_user, run_outbox):
    response = post(as_user(users["alice"]), "/api/v1/approval-requests", BODY)
    assert response.status_code == 201, response.content
    run_outbox()
    return ApprovalRequest.objects.get(pk=response.json()["id"])


def test_api_create_read_and_decide(submitted, users, as_user):
    erin = as_user(users["erin"])
    detail = erin.get(f"/api/v1/approval-requests/{submitted.pk}").json()
    assert detail["state"] == "in-review"
    assert {r["gate"] for r in detail["policyResults"]} >= {"metric_thresholds", "model_card"}
    assert all("message" in rule for r in detail["policyResults"] for rule in r["rules"])
    listed = erin.get("/api/v1/approval-requests?awaiting=1").json()
    assert [r["id"] for r in listed["items"]] == [submitted.pk]
    response = post(erin, f"/api/v1/approval-requests/{submitted.pk}/decisions", {"decision": "approve"})
    assert response.status_code == 201 and response.json()["state"] == "approved"
    again = post(
        as_user(users["frank"]),
        f"/api/v1/approval-requests/{submitted.pk}/decisions",
        {"decision": "approve"},
    )
    assert again.status_code == 409 and again.json()["error"]["state"] == "approved"


def test_api_separation_of_duties_for_requester_and_admin(fraud_versions, users, as_user, run_outbox):
    grace = as_user(users["grace"])
    created = post(grace, "/api/v1/approval-requests", BODY).json()
    run_outbox()
    response = post(grace, f"/api/v1/approval-requests/{created['id']}/decisions", {"decision": "approve"})
    assert response.status_code == 403 and "Separation of duties" in response.json()["error"]["message"]
    assert not Decision.objects.exists()


def test_api_bad_input(fraud_versions, users, as_user):
    alice = as_user(users["alice"])
    assert post(alice, "/api/v1/approval-requests", {**BODY, "action": "nope"}).status_code == 400
    assert (
        post(alice, "/api/v1/approval-requests", {**BODY, "target": "model:default/ghost"}).status_code == 404
    )
    bad_version = post(alice, "/api/v1/approval-requests", {**BODY, "params": {"version": "42"}})
    assert bad_version.status_code == 400 and "no version 42" in bad_version.json()["error"]["message"]
    assert post(alice, "/api/v1/approval-requests", {**BODY, "target": "not a ref!"}).status_code == 400
    assert ApprovalRequest.objects.count() == 0


def test_reviewer_of_another_team_gets_404_for_private_target(fraud_versions, users, as_user, run_outbox):
    """A request about a private fraud-ml model is invisible to a recsys maintainer: 404, like a missing one."""
    from catalog.models import Entity

    alice = as_user(users["alice"])
    private = Entity.objects.get(ref="model:default/chargeback-predictor")
    assert private.visibility == "private"
    created = post(
        alice,
        "/api/v1/approval-requests",
        {"action": "mark-production", "target": "model:default/chargeback-predictor"},
    )
    assert created.status_code == 201, created.content
    run_outbox()
    carol = as_user(users["carol"])
    pk = created.json()["id"]
    assert carol.get(f"/api/v1/approval-requests/{pk}").status_code == 404
    assert (
        post(carol, f"/api/v1/approval-requests/{pk}/decisions", {"decision": "approve"}).status_code == 404
    )
    assert carol.get(f"/reviews/requests/{pk}/").status_code == 404
    assert pk not in [r["id"] for r in carol.get("/api/v1/approval-requests").json()["items"]]
    # erin reviews for risk-governance, where the request is routed: she may see it although it is private.
    assert as_user(users["erin"]).get(f"/api/v1/approval-requests/{pk}").status_code == 200


def test_oversized_comment_is_refused(submitted, users, as_user):
    response = post(
        as_user(users["erin"]),
        f"/api/v1/approval-requests/{submitted.pk}/decisions",
        {"decision": "approve", "comment": "x" * 4001},
    )
    assert response.status_code == 400 and "at most 4000" in response.json()["error"]["message"]
    assert not Decision.objects.exists()


def test_decisions_need_csrf_in_the_browser(submitted, users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["erin"])
    page = client.post(f"/reviews/requests/{submitted.pk}/decide/", {"decision": "approve"})
    api = client.post(
        f"/api/v1/approval-requests/{submitted.pk}/decisions",
        data=json.dumps({"decision": "approve"}),
        content_type="application/json",
    )
    assert page.status_code == 403 and api.status_code == 403
    assert not Decision.objects.exists()


def test_inbox_nav_count_and_request_page(submitted, users, as_user, django_assert_max_num_queries):
    erin = as_user(users["erin"])
    inbox = erin.get("/reviews/")
    assert inbox.status_code == 200
    html = inbox.content.decode()
    assert f"#{submitted.pk}" in html and 'class="count">1<' in html
    page = erin.get(f"/reviews/requests/{submitted.pk}/").content.decode()
    assert "v2 → v3" in page and "Approve" in page and "Model card" in page
    assert "card-transactions-2025" in page  # lineage
    assert 'data-testid="metrics"' in page and "0.93" in page and "0.91" in page
    # The nav count is one query for a signed-in user.
    from django.test import RequestFactory

    from portal.governance.context_processors import navigation

    request = RequestFactory().get("/")
    request.user = users["erin"]
    with django_assert_max_num_queries(1):
        assert navigation(request) == {"nav_review_count": 1, "nav_may_read_audit": False}


def test_browser_decision_and_separation_of_duties(submitted, users, as_user):
    alice = as_user(users["alice"])
    own = alice.get(f"/reviews/requests/{submitted.pk}/").content.decode()
    assert "Separation of duties" in own and 'data-testid="decide-form"' not in own
    refused = alice.post(f"/reviews/requests/{submitted.pk}/decide/", {"decision": "approve"}, follow=True)
    assert "Separation of duties" in refused.content.decode()
    erin = as_user(users["erin"])
    no_comment = erin.post(
        f"/reviews/requests/{submitted.pk}/decide/", {"decision": "reject"}, headers={"HX-Request": "true"}
    )
    assert "comment is required" in no_comment.content.decode()
    # fraud-detector is risk tier 1: the browser's approval needs the typed confirmation, checked here.
    for typed in (None, "", "fraud"):
        data = {"decision": "approve", "comment": "looks fine"} | ({"confirm": typed} if typed is not None else {})
        unconfirmed = erin.post(f"/reviews/requests/{submitted.pk}/decide/", data, headers={"HX-Request": "true"})
        html = unconfirmed.content.decode()
        assert "type fraud-detector in the confirmation box" in html and "looks fine" in html, typed
        assert not Decision.objects.filter(request_id=submitted.pk).exists()
    ok = erin.post(f"/reviews/requests/{submitted.pk}/decide/", {"decision": "approve", "confirm": "fraud-detector"},
                   headers={"HX-Request": "true"})
    assert ok.status_code == 200 and ok.headers["HX-Redirect"] == f"/reviews/requests/{submitted.pk}/"
    assert ApprovalRequest.objects.get(pk=submitted.pk).state == State.APPROVED


def test_separation_of_duties_in_django_admin_has_no_bypass(submitted, users, as_user):
    """Approval models are not editable in the Django admin, so an admin cannot record a decision there."""
    grace = as_user(users["grace"])
    assert grace.get("/admin/governance/decision/add/").status_code == 403
    assert grace.get("/admin/governance/approvalrequest/").status_code == 200  # readable
    response = grace.post(f"/admin/governance/approvalrequest/{submitted.pk}/change/", {"state": "approved"})
    assert response.status_code == 403
    assert ApprovalRequest.objects.get(pk=submitted.pk).state == State.IN_REVIEW


def test_entity_page_shows_request_button_and_history(submitted, users, as_user):
    alice = as_user(users["alice"])
    page = alice.get("/catalog/model/default/fraud-detector/").content.decode()
    assert "Request promotion" in page
    history = alice.get("/catalog/model/default/fraud-detector/approvals/").content.decode()
    assert f"#{submitted.pk}" in history and "v2 → v3" in history


def test_new_request_form(fraud_versions, users, as_user):
    alice = as_user(users["alice"])
    form = alice.get("/reviews/new/?action=promote-model-version&target=model:default/fraud-detector")
    assert form.status_code == 200 and "v3 (challenger)" in form.content.decode()
    response = alice.post(
        "/reviews/new/",
        {
            "action": "promote-model-version",
            "target": "model:default/fraud-detector",
            "version": "3",
            "alias": "champion",
            "justification": "why not",
        },
    )
    assert response.status_code == 302
    assert ApprovalRequest.objects.get().requester == users["alice"]


def test_audit_events_api_and_export_for_admins_only(submitted, users, as_user):
    erin = as_user(users["erin"])
    assert erin.get("/api/v1/audit-events").status_code == 403
    assert erin.get("/reviews/audit/").status_code == 403
    grace = as_user(users["grace"])
    page = grace.get(f"/api/v1/audit-events?request={submitted.pk}").json()
    assert [e["action"] for e in page["items"]] == ["governance.request.submit", "governance.request.gates"]
    assert page["items"][0]["actor"] == "alice" and page["items"][0]["remoteAddr"] == "127.0.0.1"
    assert page["chainHead"]["seq"] == AuditEvent.objects.count()
    exported = grace.get("/reviews/audit/?format=json").json()
    assert exported["chainHead"]["hash"] == exported["events"][-1]["hash"]
    csv_body = b"".join(grace.get("/reviews/audit/?format=csv&action=governance").streaming_content).decode()
    assert csv_body.startswith("# chain head") and "governance.request.submit" in csv_body
    assert grace.get("/reviews/audit/?actor=alice").status_code == 200


def test_policy_source_is_readable(users, as_user, demo_org):
    page = as_user(users["erin"]).get("/reviews/policies/metric_thresholds/")
    assert page.status_code == 200 and "package plinth.gates.metric_thresholds" in page.content.decode()
    assert as_user(users["erin"]).get("/reviews/policies/..%2Fsecrets/").status_code == 404
