"""The incidents API and pages: list with filters, read, open, status, notes, postmortem; the entity
page's badge (one query) and Incidents tab; another team's private incident is a 404 everywhere; constant
query counts; CSRF on the pages' forms and on session API calls."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Entity
from portal.incidents import services
from portal.incidents.models import Incident

from .conftest import PRIVATE, RANKER, SERVICE, post

pytestmark = pytest.mark.django_db


def _open(user, ref=SERVICE, severity="sev2", **extra):
    incident, _ = services.incident_open(actor=user, title=f"{ref} is down", severity=severity, entities=[ref], **extra)
    return incident


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_open_read_and_move_through_the_api(demo_org, api_as):
    bob = api_as("bob")
    created = post(bob, "/api/v1/incidents", {"title": "Scoring 503s", "severity": "sev2", "entities": [SERVICE],
                                               "summary": "since 10:40", "dedupKey": "pipeline-1"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["team"], body["entities"], body["status"]) == ("fraud-ml", [SERVICE], "open")
    assert body["timeline"][0]["kind"] == "opened"
    again = post(bob, "/api/v1/incidents", {"title": "Scoring 503s", "severity": "sev2", "entities": [SERVICE],
                                             "dedupKey": "pipeline-1"})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    pk = body["id"]
    acked = post(bob, f"/api/v1/incidents/{pk}/status", {"status": "acknowledged", "note": "looking"})
    assert acked.status_code == 200 and acked.json()["mttaSeconds"] is not None
    assert post(bob, f"/api/v1/incidents/{pk}/status", {"status": "open"}).status_code == 409
    noted = post(bob, f"/api/v1/incidents/{pk}/notes", {"text": "rolled back v3"})
    assert noted.status_code == 201 and noted.json()["timeline"][-1]["text"] == "rolled back v3"
    done = post(bob, f"/api/v1/incidents/{pk}/status", {"status": "resolved"}).json()
    assert done["status"] == "resolved" and done["mttrSeconds"] is not None
    assert bob.get(f"/api/v1/incidents/{pk}").json()["resolvedAt"] == done["resolvedAt"]


def test_list_filters_and_pages(demo_org, api_as):
    users = demo_org["users"]
    for i in range(3):
        _open(users["bob"], severity="sev1" if i == 0 else "sev3")
    services.incident_transition(actor=users["bob"], incident_id=Incident.objects.order_by("id").first().pk,
                                 status="resolved")
    _open(users["carol"], RANKER)
    client = api_as("dan")
    assert len(client.get("/api/v1/incidents").json()["items"]) == 4
    assert len(client.get("/api/v1/incidents?status=active").json()["items"]) == 3
    assert len(client.get("/api/v1/incidents?severity=sev3&team=fraud-ml").json()["items"]) == 2
    assert [i["entities"] for i in client.get(f"/api/v1/incidents?entity={RANKER}").json()["items"]] == [[RANKER]]
    first = client.get("/api/v1/incidents?limit=3").json()
    rest = client.get(f"/api/v1/incidents?limit=3&cursor={first['pageInfo']['nextCursor']}").json()
    assert len(first["items"]) == 3 and len(rest["items"]) == 1 and rest["pageInfo"]["nextCursor"] is None
    bad = client.get("/api/v1/incidents?status=burning&severity=sev9")
    assert bad.status_code == 400 and {"status", "severity"} <= set(bad.json()["error"]["details"])


def test_another_teams_private_incident_is_a_404_everywhere(demo_org, api_as):
    secret = _open(demo_org["users"]["alice"], PRIVATE)
    carol = api_as("carol")
    assert "chargeback" not in carol.get("/api/v1/incidents").content.decode()
    missing = carol.get("/api/v1/incidents/987654")
    hidden = carol.get(f"/api/v1/incidents/{secret.pk}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"]
    for path, body in [("status", {"status": "acknowledged"}), ("notes", {"text": "x"}), ("postmortem", {"url": ""})]:
        assert post(carol, f"/api/v1/incidents/{secret.pk}/{path}", body).status_code == 404
    page = _signed_in(demo_org["users"]["carol"])
    assert page.get(f"/incidents/{secret.pk}/").status_code == 404
    assert "chargeback" not in page.get("/incidents/?status=").content.decode()
    opened = post(carol, "/api/v1/incidents", {"title": "x", "severity": "sev3", "entities": [PRIVATE]})
    assert opened.status_code == 404 and not Incident.objects.exclude(pk=secret.pk).exists()


def test_a_refused_action_on_a_missing_or_hidden_incident_is_a_404_not_a_500(demo_org):
    """The incident is looked up (and its visibility checked) before the posted input: a bad status or an
    empty note on an incident the user cannot see, or that does not exist, is the same 404 as a good one."""
    secret = _open(demo_org["users"]["alice"], PRIVATE)
    carol = Client(raise_request_exception=True)
    carol.force_login(demo_org["users"]["carol"])
    for pk in (secret.pk, 999999, 2**70):
        for path, body in [("status", {"status": "bogus"}), ("status", {"status": "acknowledged"}),
                           ("notes", {"text": ""}), ("notes", {"text": "x"}), ("postmortem", {"url": "http://x/"})]:
            assert carol.post(f"/incidents/{pk}/{path}/", body).status_code == 404, (pk, path, body)
    assert not secret.timeline.exclude(kind="opened").filter(actor__username="carol").exists()
    alice = _signed_in(demo_org["users"]["alice"])
    refused = alice.post(f"/incidents/{secret.pk}/status/", {"status": "bogus"})
    assert refused.status_code == 400 and "Unknown status" in refused.content.decode()


def test_session_api_calls_need_the_csrf_token(demo_org):
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo_org["users"]["bob"])
    response = post(client, "/api/v1/incidents", {"title": "x", "severity": "sev3", "entities": [SERVICE]})
    assert response.status_code == 403 and not Incident.objects.exists()


def test_pages_open_acknowledge_resolve_by_form(demo_org):
    bob = _signed_in(demo_org["users"]["bob"])
    response = bob.post("/incidents/new/", {"title": "Scoring 503s", "severity": "sev1", "entity": SERVICE,
                                            "summary": "20 %"})
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert response["Location"] == incident.get_absolute_url()
    assert bob.post(f"/incidents/{incident.pk}/status/", {"status": "acknowledged"}).status_code == 302
    assert bob.post(f"/incidents/{incident.pk}/notes/", {"text": "rolled back"}).status_code == 302
    bad = bob.post(f"/incidents/{incident.pk}/postmortem/", {"url": "/docs/component/default/nope/x/"})
    assert bad.status_code == 404 and "No docs page" in bad.content.decode()  # the form again, with the error
    assert bob.post(f"/incidents/{incident.pk}/status/", {"status": "resolved"}).status_code == 302
    page = bob.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Reopen" in page and "rolled back" in page and 'data-testid="incident-mttr"' in page
    listing = bob.get("/incidents/").content.decode()  # the default filter: open or acknowledged ones
    figures = listing.split('data-testid="incident-figures"', 1)[1].split("</dl>", 1)[0]
    assert "0 incidents" in listing and "—" not in figures and "1 resolved" in listing  # resolved ones count
    refused = bob.post("/incidents/new/", {"title": "", "severity": "sev1", "entity": SERVICE})
    assert refused.status_code == 400 and "The title is required." in refused.content.decode()
    heidi = _signed_in(demo_org["users"]["heidi"])
    assert heidi.get("/incidents/new/").status_code == 403


def test_the_entity_page_badge_costs_one_query_and_the_tab_lists_history(demo_org):
    users = demo_org["users"]
    bob = _signed_in(users["bob"])
    url = "/catalog/component/default/fraud-scoring-service/"
    bob.get(url)
    with CaptureQueriesContext(connection) as without:
        html = bob.get(url).content.decode()
    assert 'data-testid="incident-badge"' not in html
    _open(users["bob"], severity="sev3")
    _open(users["bob"], severity="sev1")
    with CaptureQueriesContext(connection) as with_two:
        html = bob.get(url).content.decode()
    assert "● 2 open incidents (SEV1)" in html
    assert len(with_two) == len(without)
    old = _open(users["bob"])
    Incident.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(hours=3))
    services.incident_transition(actor=users["bob"], incident_id=old.pk, status="resolved")
    tab = bob.get(f"{url}incidents/")
    assert tab.status_code == 200
    text = tab.content.decode()
    assert 'data-testid="incident-open-form"' in text and 'data-testid="incident-history"' in text
    assert "3 h 00 min" in text  # its MTTR, and the 90-day MTTR of the only resolved one


def test_pages_and_api_cost_the_same_with_more_incidents(demo_org, api_as):
    users = demo_org["users"]
    client = _signed_in(users["bob"])
    api = api_as("bob")
    urls = ["/incidents/", "/incidents/?status=&severity=sev2", "/catalog/component/default/fraud-scoring-service/incidents/"]

    def counts():
        out = []
        for url in urls:
            with CaptureQueriesContext(connection) as seen:
                assert client.get(url).status_code == 200
            out.append(len(seen))
        with CaptureQueriesContext(connection) as seen:
            assert api.get("/api/v1/incidents?limit=50").status_code == 200
        out.append(len(seen))
        return out

    _open(users["bob"])
    counts()
    few = counts()
    for i in range(12):
        incident = _open(users["bob"], RANKER if i % 2 else SERVICE, severity=f"sev{1 + i % 4}")
        if i % 3 == 0:
            services.incident_transition(actor=users["grace"], incident_id=incident.pk, status="resolved")
    assert counts() == few
    detail = Incident.objects.last()
    services.incident_note(actor=users["bob"], incident_id=detail.pk, text="one")
    with CaptureQueriesContext(connection) as one:
        client.get(f"/incidents/{detail.pk}/")
    for n in range(10):
        services.incident_note(actor=users["bob"], incident_id=detail.pk, text=f"note {n}")
    with CaptureQueriesContext(connection) as eleven:
        client.get(f"/incidents/{detail.pk}/")
    assert len(one) == len(eleven)


def test_the_list_page_filters_by_keyboard_friendly_selects_and_htmx(demo_org):
    users = demo_org["users"]
    _open(users["bob"], severity="sev1")
    _open(users["carol"], RANKER, severity="sev4")
    client = _signed_in(users["dan"])
    page = client.get("/incidents/").content.decode()
    assert '<label for="f-severity">Severity</label>' in page and "product-ranker" in page
    fragment = client.get("/incidents/?status=active&severity=sev4", HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert "HX-Request" in fragment["Vary"] and "<html" not in html
    assert "product-ranker" in html and "fraud-scoring-service" not in html
    assert client.get("/incidents/?severity=sev9").status_code == 400


def test_entity_link_rows_follow_the_readers_visibility(demo_org):
    users = demo_org["users"]
    incident, _ = services.incident_open(actor=users["alice"], title="Both down", severity="sev2",
                                         entities=[SERVICE, PRIVATE])
    assert incident.visibility == "internal"
    carol = _signed_in(users["carol"])
    page = carol.get(f"/incidents/{incident.pk}/").content.decode()
    assert "fraud-scoring-service" in page and "chargeback" not in page
    assert Entity.objects.filter(ref=PRIVATE).exists()


def _mixed_alerts(api_as):
    """An Alertmanager group with an alert on fraud-ml's internal service and one on its private model:
    the incident is internal (its first entity), the private model's alert is not every reader's."""
    from .conftest import alert, payload

    body = post(api_as("bob"), "/api/v1/incidents/alertmanager",
                payload(alert("A", entity=SERVICE), alert("B", entity=PRIVATE, instance="x"))).json()
    return Incident.objects.get(pk=body["incident"]["id"])


def test_another_teams_private_entity_stays_out_of_alerts_and_timeline(demo_org, api_as):
    incident = _mixed_alerts(api_as)
    assert incident.visibility == "internal"
    carol = api_as("carol")  # recsys
    body = carol.get(f"/api/v1/incidents/{incident.pk}").json()
    assert "chargeback" not in json.dumps(body), body
    hidden = next(a for a in body["alerts"] if a["name"] == "B")
    assert hidden["entity"] is None and hidden["labels"] == {} and hidden["annotations"] == {}
    shown = next(a for a in body["alerts"] if a["name"] == "A")
    assert shown["entity"] == SERVICE and shown["labels"]["plinth_entity"] == SERVICE
    page = _signed_in(demo_org["users"]["carol"]).get(f"/incidents/{incident.pk}/")
    assert page.status_code == 200 and "chargeback" not in page.content.decode()
    # Its own team reads every alert.
    alice = api_as("alice").get(f"/api/v1/incidents/{incident.pk}").json()
    assert next(a for a in alice["alerts"] if a["name"] == "B")["entity"] == PRIVATE


def test_the_detail_costs_the_same_with_more_alerts(demo_org, api_as):
    from .conftest import alert, payload

    incident = _mixed_alerts(api_as)
    client, api = _signed_in(demo_org["users"]["carol"]), api_as("carol")

    def counts():
        out = []
        for c, url in ((client, f"/incidents/{incident.pk}/"), (api, f"/api/v1/incidents/{incident.pk}")):
            with CaptureQueriesContext(connection) as seen:
                assert c.get(url).status_code == 200
            out.append(len(seen))
        return out

    few = counts()
    post(api_as("bob"), "/api/v1/incidents/alertmanager",
         payload(*[alert("C", entity=e, instance=str(i)) for i, e in enumerate([PRIVATE, SERVICE, RANKER] * 4)]))
    assert counts() == few


def test_the_entity_filter_answers_a_hidden_entity_like_a_missing_one(demo_org, api_as):
    incident = _mixed_alerts(api_as)
    carol = api_as("carol")
    hidden = carol.get("/api/v1/incidents", {"entity": PRIVATE}).json()["items"]
    missing = carol.get("/api/v1/incidents", {"entity": "model:default/no-such-model"}).json()["items"]
    assert hidden == missing == []
    assert len(carol.get("/api/v1/incidents", {"entity": SERVICE}).json()["items"]) == 1
    assert len(api_as("alice").get("/api/v1/incidents", {"entity": PRIVATE}).json()["items"]) == 1
    page = _signed_in(demo_org["users"]["carol"])
    link = f'href="/incidents/{incident.pk}/"'
    assert link in page.get("/incidents/", {"entity": SERVICE, "status": ""}).content.decode()
    assert link not in page.get("/incidents/", {"entity": PRIVATE, "status": ""}).content.decode()
