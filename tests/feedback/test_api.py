"""The feedback API: status codes and error bodies for bad input, hidden objects as 404, filters."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from portal.accounts import services as account_services
from portal.feedback import services
from portal.feedback.models import FeedbackItem

pytestmark = pytest.mark.django_db
ITEMS = "/api/v1/feedback"


def api(user) -> Client:
    _, raw = account_services.token_create(user=user, name="t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(client, url, body):
    return client.post(url, json.dumps(body) if not isinstance(body, str) else body, content_type="application/json")


def test_give_list_answer_vote_through_the_api(fb):
    dan, maint = api(fb["users"]["dan"]), api(fb["users"]["maint"])
    body = {"kind": "docs", "target": fb["public"].ref, "path": "guide/", "useful": False, "comment": "Step 3?"}
    created = post(dan, ITEMS, body)
    assert created.status_code == 201 and created.json()["ownerTeam"] == "fraud-ml"
    changed = post(dan, ITEMS, {**body, "comment": "Step 3 fails"})
    assert changed.status_code == 200 and changed.json()["id"] == created.json()["id"]
    pk = created.json()["id"]
    answered = post(maint, f"{ITEMS}/{pk}/status", {"status": "planned", "answer": "Thanks"})
    assert answered.status_code == 200 and answered.json()["status"] == "planned"
    kept = post(maint, f"{ITEMS}/{pk}/status", {"status": "done"})
    assert kept.json()["answer"] == "Thanks"  # no answer given: the answer stays
    assert post(dan, f"{ITEMS}/{pk}/vote", {}).status_code == 403  # the author
    voted = post(maint, f"{ITEMS}/{pk}/vote", {"voted": True})
    assert voted.status_code == 409  # done: no new votes
    listed = dan.get(ITEMS, {"mine": "true", "status": "done", "kind": "docs"}).json()
    assert [i["id"] for i in listed["items"]] == [pk] and listed["totalItems"] == 1
    assert dan.get(ITEMS, {"team": "fraud-ml"}).json()["totalItems"] == 1
    assert dan.get(ITEMS, {"team": "recsys"}).json()["totalItems"] == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "planet", "target": "x", "useful": True}, "kind"),
    ({"kind": "entity", "target": "component:default/scorer", "useful": "perhaps"}, "useful"),
    ({"kind": "entity", "target": "component:default/scorer", "useful": True, "comment": "x" * 4001}, "comment"),
    ({"kind": "platform", "title": ""}, "title"),
    ({"kind": "entity", "target": "component:default/scorer"}, "useful"),
])
def test_bad_bodies_are_400s_naming_the_field(fb, body, field):
    response = post(api(fb["users"]["dan"]), ITEMS, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["status"] == 400 and field in (error.get("details") or {}), error
    assert not FeedbackItem.objects.exists()


def test_malformed_json_and_params_never_500(fb):
    dan = api(fb["users"]["dan"])
    assert post(dan, ITEMS, "{not json").status_code == 400
    assert post(dan, ITEMS, "[1, 2]").status_code == 400
    for params in ({"status": "bogus"}, {"kind": "bogus"}, {"limit": "0"}, {"limit": "x"}, {"cursor": "zzz"}):
        assert dan.get(ITEMS, params).status_code == 400, params
    assert dan.get("/api/v1/roadmap", {"status": "done"}).status_code == 400
    item, _ = services.feedback_give(actor=fb["users"]["dan"], kind="platform", title="x")
    assert post(api(fb["users"]["padmin"]), f"{ITEMS}/{item.pk}/status", {"status": "shipped"}).status_code == 400
    assert post(api(fb["users"]["padmin"]), f"{ITEMS}/{item.pk}/status", {}).status_code == 400
    assert post(dan, f"{ITEMS}/{item.pk}/vote", {"voted": "maybe"}).status_code == 400


def test_feedback_on_another_teams_private_entity_is_a_404_like_a_missing_one(fb):
    item, _ = services.feedback_give(actor=fb["users"]["member"], kind="entity", target=fb["private"].ref,
                                     useful=False, comment="internal")
    outsider = api(fb["users"]["dan"])
    hidden, missing = outsider.get(f"{ITEMS}/{item.pk}"), outsider.get(f"{ITEMS}/987654")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"]
    assert post(outsider, f"{ITEMS}/{item.pk}/vote", {}).status_code == 404
    assert post(outsider, f"{ITEMS}/{item.pk}/status", {"status": "done"}).status_code == 404
    assert outsider.get(ITEMS).json()["totalItems"] == 0
    assert outsider.get(reverse("feedback:detail", args=[item.pk])).status_code in (302, 404)
    assert api(fb["users"]["viewer"]).get(f"{ITEMS}/{item.pk}").status_code == 200
