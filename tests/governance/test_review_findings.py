"""Governance holes a review found (each reproduced first): a decision on an expired request, gate
messages telling who may read a request about private datasets, a request still shown after its target
was made private, non-text purposes, a grant-access execution for a team that is gone."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from catalog.models import Entity
from portal.accounts.models import Team
from portal.governance import services
from portal.governance.models import AccessGrant, ApprovalRequest, OutboxMessage, State

pytestmark = pytest.mark.django_db
PROMOTE = {"action": "promote-model-version", "target": "model:default/fraud-detector",
           "params": {"version": "3", "alias": "champion"}, "justification": "better recall"}
DATASET = "dataset:default/card-transactions-2025"


def in_review(users, run_outbox) -> ApprovalRequest:
    req = services.request_create(actor=users["alice"], **PROMOTE)
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.IN_REVIEW
    return req


def test_a_request_past_its_expiry_takes_no_decision_even_before_the_sweep(fraud_versions, users, run_outbox):
    req = in_review(users, run_outbox)
    ApprovalRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    with pytest.raises(services.Conflict, match="expired"):
        services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve")
    req.refresh_from_db()
    assert req.state == State.EXPIRED and not req.decisions.exists()
    assert not OutboxMessage.objects.filter(request=req, task__endswith="execute_request").exists()


def _training_rules(client, pk: int) -> list[dict]:
    results = client.get(f"/api/v1/approval-requests/{pk}").json()["policyResults"]
    return [rule for r in results if r["gate"] == "training_data" for rule in r["rules"]]


def test_gate_messages_name_no_private_dataset_and_read_alike_for_a_missing_one(fraud_versions, users, run_outbox,
                                                                                 as_user):
    """Everyone who may read the request reads its gates: a private dataset is a number, like a missing one,
    and the policy still decides on its facts."""
    Entity.objects.filter(ref=DATASET).update(visibility="private")
    req = in_review(users, run_outbox)
    dan = as_user(users["dan"])  # recsys: may read the (internal) model's request, not fraud-ml's private dataset
    assert dan.get(Entity.objects.get(ref=DATASET).get_absolute_url()).status_code == 404
    rules = _training_rules(dan, req.pk)
    text = json.dumps(rules)
    assert "card-transactions-2025" not in text
    assert any("training dataset #1 (private, or not in the catalog)" in r["message"] for r in rules)
    page = dan.get(f"/reviews/requests/{req.pk}/").content.decode()
    assert "card-transactions-2025" not in page.split('data-testid="policy-results"', 1)[1].split("</section>", 1)[0]
    # The facts still decide: the private dataset is classified, so that check passes (a missing one fails).
    classified = [r for r in rules if r["rule"].startswith("classified:")]
    assert classified and all(r["pass"] for r in classified)
    # An internal dataset is still named.
    Entity.objects.filter(ref=DATASET).update(visibility="internal")
    ApprovalRequest.objects.filter(pk=req.pk).update(state=State.WITHDRAWN)
    again = in_review(users, run_outbox)
    assert any("card-transactions-2025" in r["message"] for r in _training_rules(dan, again.pk))


def test_a_request_follows_its_target_made_private(fraud_versions, users, run_outbox, as_user):
    req = in_review(users, run_outbox)
    Entity.objects.filter(ref="model:default/fraud-detector").update(visibility="private")
    dan = as_user(users["dan"])
    assert dan.get(f"/reviews/requests/{req.pk}/").status_code == 404
    assert dan.get(f"/api/v1/approval-requests/{req.pk}").status_code == 404
    assert req.pk not in [i["id"] for i in dan.get("/api/v1/approval-requests").json()["items"]]
    # Its requester and the reviewers it is routed to still see it.
    assert as_user(users["alice"]).get(f"/api/v1/approval-requests/{req.pk}").status_code == 200
    assert as_user(users["erin"]).get(f"/api/v1/approval-requests/{req.pk}").status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "grant-access", "target": DATASET, "params": {"team": "fraud-ml", "purpose": {"a": 1}}}, "purpose"),
    ({"action": "deprecate", "target": DATASET, "params": {"reason": 5}}, "reason"),
])
def test_a_purpose_or_reason_that_is_not_text_is_a_400(fraud_versions, users, as_user, body, field):
    before = ApprovalRequest.objects.count()
    response = as_user(users["alice"]).post("/api/v1/approval-requests", json.dumps(body),
                                            content_type="application/json")
    assert response.status_code == 400 and field in json.dumps(response.json()), response.content[:300]
    assert ApprovalRequest.objects.count() == before


def test_a_grant_for_a_team_gone_since_approval_fails_for_good_instead_of_looping(fraud_versions, users, run_outbox,
                                                                                   settings):
    settings.PLINTH_GOVERNANCE_EXECUTION_MAX_RETRIES = 0
    req = services.request_create(actor=users["dan"], action="grant-access", target=DATASET,
                                  params={"team": "recsys", "purpose": "ranking features"})
    run_outbox()
    for reviewer in ("frank", "erin"):
        services.request_decide(actor=users[reviewer], request_id=req.pk, decision="approve")
    Team.objects.filter(name="recsys").update(name="recsys-renamed")
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.EXECUTION_FAILED and "no longer exists" in req.last_error
    assert not AccessGrant.objects.filter(target_ref=DATASET).exists()
    assert services.sla_sweep(now=timezone.now() + datetime.timedelta(hours=1))["redispatched"] == 0


@pytest.mark.parametrize("auc", [1.7976931348623157e308, 1e30, float("inf")])
def test_a_metric_the_gates_cannot_compare_is_missing_and_fails_the_threshold(fraud_versions, users, run_outbox, auc):
    """MLflow keeps an infinite metric as the largest float (it passed every minimum); regopy reads a whole
    number beyond 64 bits as another number."""
    from catalog.models import ModelVersion
    from portal.governance.models import PolicyResult

    ModelVersion.objects.filter(entity=fraud_versions, version="3").update(metrics={"auc": auc, "precision": 0.9}
                                                                           if auc != float("inf") else {"auc": 0.5})
    if auc == float("inf"):  # not storable as JSON: what the gate input makes of it, directly
        from portal.governance.gate_input import version_facts

        row = ModelVersion(version="3", metrics={"auc": auc, "loss": float("nan"), "ok": 0.9})
        assert version_facts(row)["metrics"] == {"ok": 0.9}
        return
    req = services.request_create(actor=users["alice"], **PROMOTE)
    run_outbox()
    result = PolicyResult.objects.get(request=req, gate="metric_thresholds")
    assert not result.passed and "AUC missing" in json.dumps(result.rules), result.error
    # A candidate without the metric once broke the engine's answer for every gate ("Expecting ',' delimiter").
    assert list(PolicyResult.objects.filter(request=req).exclude(error="").values_list("error", flat=True)) == []
    regression = PolicyResult.objects.get(request=req, gate="champion_regression")
    assert not regression.passed and "The candidate has no AUC" in json.dumps(regression.rules)
