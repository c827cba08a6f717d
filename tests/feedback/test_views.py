"""Feedback pages: the "Was this useful?" form with and without htmx, CSRF, injection, hidden targets,
the platform form, answering, and constant query counts on the roadmap and the lists."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.feedback import services
from portal.feedback.models import FeedbackItem, Vote
from portal.insights.models import ActiveUserDay
from tests.factories import MembershipFactory, UserFactory
from tests.feedback.conftest import client_for

pytestmark = pytest.mark.django_db
USEFUL = reverse("feedback:useful")


def test_the_form_is_on_entity_docs_and_run_pages(fb):
    dan = client_for(fb["users"]["dan"])
    pages = {"entity": fb["public"].get_absolute_url(),
             "docs": reverse("techdocs:page", args=["component", "default", "scorer", "guide/"]),
             "template": fb["run"].get_absolute_url()}
    for kind, url in pages.items():
        body = dan.get(url).content.decode()
        assert 'data-testid="feedback-useful"' in body, kind
        assert f'name="kind" value="{kind}"' in body and 'name="csrfmiddlewaretoken"' in body
    services.feedback_give(actor=fb["users"]["dan"], kind="docs", target=fb["public"].ref, path="guide/",
                           useful=False, comment="Typo in step 2")
    body = dan.get(pages["docs"]).content.decode()
    assert "Typo in step 2</textarea>" in body and 'value="no" aria-pressed="true"' in body


def test_plain_post_redirects_back_and_htmx_gets_the_fragment(fb):
    dan = client_for(fb["users"]["dan"])
    page = fb["public"].get_absolute_url()
    data = {"kind": "entity", "target": fb["public"].ref, "useful": "yes", "comment": "", "next": page}
    response = dan.post(USEFUL, data)
    assert response.status_code == 302 and response["Location"] == page
    response = dan.post(USEFUL, {**data, "useful": "no", "comment": "Needs owners"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"<html" not in response.content
    assert b"Thank you, saved." in response.content and b"follow your feedback" in response.content
    item = FeedbackItem.objects.get()
    assert (item.useful, item.comment) == (False, "Needs owners")
    # An open redirect is refused: back to the item instead.
    response = dan.post(USEFUL, {**data, "next": "https://evil.example/"})
    assert response["Location"] == item.get_absolute_url()


def test_csrf_is_required(fb):
    client = Client(enforce_csrf_checks=True)
    client.force_login(fb["users"]["dan"])
    response = client.post(USEFUL, {"kind": "entity", "target": fb["public"].ref, "useful": "yes"})
    assert response.status_code == 403 and not FeedbackItem.objects.exists()


def test_bad_input_answers_with_the_form_and_a_message_never_a_500(fb, settings):
    settings.PLINTH_FEEDBACK_MAX_COMMENT_CHARS = 100
    dan = client_for(fb["users"]["dan"])
    base = {"kind": "entity", "target": fb["public"].ref, "useful": "yes"}
    response = dan.post(USEFUL, {**base, "comment": "x" * 101})
    assert response.status_code == 400 and b"at most 100" in response.content
    assert b"x" * 101 + b"</textarea>" in response.content  # the draft is kept
    response = dan.post(USEFUL, {**base, "useful": ""}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"yes or no" in response.content and b'role="alert"' in response.content
    for bad in ({"kind": "nope"}, {"useful": "maybe"}):
        assert dan.post(USEFUL, {**base, **bad}).status_code == 400
    hidden = dan.post(USEFUL, {**base, "target": fb["private"].ref})
    missing = dan.post(USEFUL, {**base, "target": "component:default/missing"})
    assert hidden.status_code == missing.status_code == 404
    assert _normalised(hidden.content) == _normalised(missing.content)
    assert not FeedbackItem.objects.exists()


def _normalised(body: bytes) -> bytes:
    """Without what differs per response: the request id and the masked CSRF token."""
    body = re.sub(rb"request [0-9a-f]{32}", b"", body)
    return re.sub(rb'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[A-Za-z0-9]+', b"", body)


INJECTIONS = [
    '<script>alert("x")</script>',
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="javascript:alert(2)">a</a>',
    "![p](data:image/svg+xml;base64,PHN2Zz4=)",
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{display:none}</style>",
]


def test_comments_and_answers_are_sanitised_markdown(fb):
    dan, maint = fb["users"]["dan"], fb["users"]["maint"]
    text = "**Bold** and `code`\n\n" + "\n\n".join(INJECTIONS)
    item, _ = services.feedback_give(actor=dan, kind="entity", target=fb["public"].ref, useful=False, comment=text)
    services.feedback_answer(actor=maint, item_id=item.pk, status="planned", answer=text)
    body = client_for(dan).get(item.get_absolute_url()).content.decode()
    assert "<strong>Bold</strong>" in body and "<code>code</code>" in body
    for bad in ("<script>alert", "onerror", "javascript:", "data:image", "<iframe", "display:none"):
        assert bad not in body, bad
    api = client_for(dan).get(reverse("feedback-api-item", args=[item.pk])).json()
    assert api["comment"] == text and "<script" not in api["commentHtml"] and "javascript:" not in api["answerHtml"]


def test_the_platform_form(fb, settings):
    dan = client_for(fb["users"]["dan"])
    url = reverse("feedback:new")
    page = dan.get(url)
    key = re.search(rb'name="client_key" value="([0-9a-f]+)"', page.content).group(1).decode()
    assert page.status_code == 200 and b"platform team" in page.content
    response = dan.post(url, {"title": "", "comment": "x", "client_key": key})
    assert response.status_code == 400 and b"Give your idea a title" in response.content
    response = dan.post(url, {"title": "t" * 300, "comment": "", "client_key": key})
    assert response.status_code == 400 and b"at most 200" in response.content
    first = dan.post(url, {"title": "Dark mode", "comment": "Please", "client_key": key})
    second = dan.post(url, {"title": "Dark mode", "comment": "Please", "client_key": key})  # a double submit
    item = FeedbackItem.objects.get()
    assert first["Location"] == second["Location"] == item.get_absolute_url()
    assert item.owner_team == fb["teams"]["platform"]


def test_answering_on_the_item_page(fb):
    dan, maint = fb["users"]["dan"], fb["users"]["maint"]
    item, _ = services.feedback_give(actor=dan, kind="entity", target=fb["public"].ref, useful=False, comment="Why?")
    page = client_for(maint).get(item.get_absolute_url())
    assert b'name="status"' in page.content
    assert b'name="status"' not in client_for(dan).get(item.get_absolute_url()).content
    url = reverse("feedback:answer", args=[item.pk])
    assert client_for(maint).post(url, {"status": "bogus", "answer": "x"}).status_code == 400
    assert client_for(fb["users"]["member"]).post(url, {"status": "done", "answer": "x"}).status_code == 302
    item.refresh_from_db()
    assert item.status == "open"  # the member was refused (message on the page)
    answer = "Next week: the guide gets a *Scopes* section and `plinth login` a **--team** flag."
    assert client_for(maint).post(url, {"status": "planned", "answer": answer}).status_code == 302
    page = client_for(dan).get(item.get_absolute_url()).content.decode()
    assert "<em>Scopes</em>" in page and "Planned" in page
    mine = client_for(dan).get(reverse("feedback:list")).content.decode()
    assert 'data-testid="my-feedback"' in mine
    # The list's excerpt is the text a reader of the answer sees, not its Markdown marks.
    assert "Next week: the guide gets a Scopes section and plinth login a --team flag." in mine


def _world_of_requests(fb, n: int, offset: int = 0) -> None:
    team = fb["teams"]["recsys"]
    for i in range(n):
        author = UserFactory(username=f"asker{offset + i}")
        MembershipFactory(user=author, team=team)
        item, _ = services.feedback_give(actor=author, kind="platform", title=f"Idea {offset + i}",
                                         client_key=f"c{offset + i}")
        for voter in ("carol", "maint"):
            services.feedback_vote(actor=fb["users"][voter], item_id=item.pk)
        services.feedback_give(actor=author, kind="entity", target=fb["public"].ref, useful=False,
                               comment=f"comment {offset + i}")


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_roadmap_and_lists_use_a_constant_number_of_queries(fb):
    _world_of_requests(fb, 2)
    urls = [reverse("feedback:roadmap"), reverse("feedback:list"), reverse("feedback-api-roadmap"),
            reverse("feedback-api-items")]
    clients = {"dan": client_for(fb["users"]["dan"]), "root": client_for(fb["users"]["root"]),
               "maint": client_for(fb["users"]["maint"])}
    before = {(u, c): _queries(client, u) for u in urls for c, client in clients.items()}
    _world_of_requests(fb, 8, offset=2)
    after = {(u, c): _queries(client, u) for u in urls for c, client in clients.items()}
    assert before == after


def test_roadmap_ranks_by_votes_and_the_asking_teams_active_users(fb):
    users, today = fb["users"], timezone.now().date()
    quiet, _ = services.feedback_give(actor=users["viewer"], kind="platform", title="Quiet team", client_key="a")
    busy, _ = services.feedback_give(actor=users["dan"], kind="platform", title="Busy team", client_key="b")
    voted, _ = services.feedback_give(actor=users["pmaint"], kind="platform", title="Voted", client_key="c")
    services.feedback_vote(actor=users["root"], item_id=voted.pk)  # root is in no team: +5, no reach
    for i in range(7):  # recsys has 7 more active people: dan's idea reaches 9 (incl. dan, carol)
        person = UserFactory(username=f"active{i}")
        MembershipFactory(user=person, team=fb["teams"]["recsys"])
        ActiveUserDay.objects.create(day=today - timedelta(days=3), user=person)
    for name in ("dan", "carol", "maint"):
        ActiveUserDay.objects.create(day=today, user=users[name])
    ActiveUserDay.objects.create(day=today - timedelta(days=40), user=users["viewer"])  # too long ago
    done, _ = services.feedback_give(actor=users["dan"], kind="platform", title="Done already", client_key="d")
    services.feedback_answer(actor=users["padmin"], item_id=done.pk, status="done", answer="")
    bare, _ = services.feedback_give(actor=users["dan"], kind="entity", target=fb["public"].ref, useful=True)

    rows = client_for(users["dan"]).get(reverse("feedback-api-roadmap")).json()["items"]
    assert [(r["item"]["title"], r["votes"], r["activeUsers"], r["score"]) for r in rows] == [
        ("Busy team", 0, 9, 9), ("Voted", 1, 0, 5), ("Quiet team", 0, 1, 1)]
    assert rows[2]["askingTeams"] == ["fraud-ml"]  # maint was active today
    page = client_for(users["dan"]).get(reverse("feedback:roadmap")).content.decode()
    assert "1 vote × 5 + 0 active" in page and "0 votes × 5 + 9 active" in page
    planned = client_for(users["dan"]).get(reverse("feedback:roadmap") + "?status=planned&kind=platform")
    assert planned.status_code == 200 and b"Nothing on the roadmap for this filter" in planned.content
    # Votes toggle (htmx without `on` answers the button only).
    response = client_for(users["carol"]).post(reverse("feedback:vote", args=[busy.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and b'aria-pressed="true"' in response.content and b"\xe2\x96\xb2 1" in response.content
    assert Vote.objects.filter(item=busy).count() == 1
    # A vote from the roadmap answers the row's new asking teams and score with the button (out of band):
    # the button and the score never disagree. maint (fraud-ml, active today) joins the asking teams.
    response = client_for(users["maint"]).post(reverse("feedback:vote", args=[busy.pk]),
                                               {"on": "roadmap", "next": reverse("feedback:roadmap")},
                                               headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "▲ 2" in body
    assert re.search(rf'<span id="fb-teams-{busy.pk}" hx-swap-oob="true">fraud-ml, recsys</span>', body)
    score = re.search(rf'<span id="fb-score-{busy.pk}" hx-swap-oob="true"><strong>(\d+)</strong>'
                      r'<span class="parts">([^<]*)</span>', body)
    assert score and score.groups() == ("20", "2 votes × 5 + 10 active")
    page = client_for(users["maint"]).get(reverse("feedback:roadmap")).content.decode()
    assert f'<span id="fb-score-{busy.pk}"><strong>20</strong>' in page  # what a reload shows
