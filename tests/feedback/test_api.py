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


def test_feedback_on_a_run_of_a_template_the_poster_may_not_see_is_a_404_like_a_missing_run(fb):
    """The run is the poster's (their own, or their team's) but its template is hidden from them: another
    team's private template (made private later, or never theirs to see), or gone from the catalog. Posted
    directly (the run page offers no form then), it is answered as a missing run is, and nothing is stored:
    accepted, the template's title would be in the item's label and its owner team in the answer."""
    from portal.scaffolder.models import Run
    from tests.factories import EntityFactory

    users, fraud = fb["users"], fb["teams"]["fraud-ml"]
    template = EntityFactory(kind="Template", name="secret-gpu", title="Secret GPU pipeline", owner_team=fraud,
                             spec_type="service", visibility="private")
    hidden = Run.objects.create(template_ref=template.ref, template_title="Secret GPU pipeline", template_source="x",
                                template={}, created_by=users["dan"], status="failed")
    gone = Run.objects.create(template_ref="template:default/removed", template_title="Removed pipeline",
                              template_source="x", template={}, created_by=users["dan"], status="failed")
    dan = api(users["dan"])
    answers = {}
    for name, target in [("hidden", str(hidden.uid)), ("gone", str(gone.uid)),
                         ("missing", "00000000-0000-0000-0000-000000000000")]:
        response = post(dan, ITEMS, {"kind": "template", "target": target, "useful": False, "comment": "Broke"})
        assert response.status_code == 404, (name, response.content)
        assert "Secret GPU" not in response.content.decode() and "fraud-ml" not in response.content.decode()
        answers[name] = response.json()["error"]
    assert answers["hidden"] == answers["gone"] == answers["missing"]
    with pytest.raises(services.FeedbackError) as caught:
        services.feedback_give(actor=users["dan"], kind="template", target=str(hidden.uid), useful=True)
    assert caught.value.status == 404
    assert not FeedbackItem.objects.exists()
    # Whoever may see the template may give feedback on a run they see (fraud-ml's own, here).
    Run.objects.filter(pk=hidden.pk).update(owner_team=fraud)
    item, _ = services.feedback_give(actor=users["member"], kind="template", target=str(hidden.uid), useful=False)
    assert item.entity == template and item.owner_team == fraud and "Secret GPU pipeline" in item.target_label
    assert api(users["carol"]).get(f"{ITEMS}/{item.pk}").status_code == 404  # recsys: as private as the template


def test_long_docs_paths_sharing_a_prefix_are_separate_answers(fb):
    prefix = "a" * 370
    long_alpha = services.target_key("docs", fb["public"].ref, prefix + "/alpha/")
    long_bravo = services.target_key("docs", fb["public"].ref, prefix + "/bravo/")
    assert long_alpha != long_bravo and len(long_alpha) <= 400 and len(long_bravo) <= 400
    assert long_alpha == services.target_key("docs", fb["public"].ref.upper(), "/" + prefix + "/alpha/")  # stable
    # Keys that fit are kept as they were (no migration of stored answers).
    assert services.target_key("docs", fb["public"].ref, "guide/") == f"docs:{fb['public'].ref}#guide/"


@pytest.mark.parametrize(("url", "body", "field"), [
    ("status", {"status": "done", "answer": 7}, "answer"),
    ("status", {"status": "done", "answer": ["x"]}, "answer"),
    ("create", {"kind": "platform", "title": 7}, "title"),
    ("create", {"kind": "entity", "target": "component:default/scorer", "useful": True, "comment": 7}, "comment"),
    ("create", {"kind": "platform", "title": {"a": 1}}, "title"),
])
def test_text_fields_take_only_text(fb, url, body, field):
    """A number or a list is not an answer, a title or a comment: 400 naming the field, nothing saved."""
    users = fb["users"]
    item, _ = services.feedback_give(actor=users["dan"], kind="entity", target=fb["public"].ref, useful=False,
                                     comment="Why?")
    target = f"{ITEMS}/{item.pk}/status" if url == "status" else ITEMS
    before = list(FeedbackItem.objects.values())
    response = post(api(users["maint"]), target, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert list(FeedbackItem.objects.values()) == before
