"""Incidents opened by hand and by a service: owner and visibility from the first entity, idempotency per
dedup key while unresolved, the state machine (acknowledge, resolve, reopen) with MTTA and MTTR, who may
do what, the postmortem link, and the owning team's notification."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from catalog.models import Entity
from portal.core.models import AuditEvent
from portal.governance.models import Notification
from portal.incidents import services, tasks
from portal.incidents.models import EntryKind, Incident, Status, TimelineEntry
from portal.techdocs.models import DocPage, DocSite

from .conftest import API, PRIVATE, RANKER, SERVICE

pytestmark = pytest.mark.django_db


def _open(actor, **overrides):
    args = {"actor": actor, "title": "Scoring answers 503", "severity": "sev2", "entities": [SERVICE],
            "summary": "20 % of calls fail"}
    args.update(overrides)
    return services.incident_open(**args)


def test_opening_links_entities_takes_the_first_ones_team_and_is_audited(demo_org):
    bob = demo_org["users"]["bob"]
    incident, created = _open(bob, entities=[SERVICE, RANKER])
    assert created and incident.status == Status.OPEN and incident.owner_team.name == "fraud-ml"
    assert [link.entity.ref for link in incident.links.order_by("position")] == [SERVICE, RANKER]
    assert incident.visibility == "internal" and incident.opened_by == bob
    assert TimelineEntry.objects.get(incident=incident).kind == EntryKind.OPENED
    assert AuditEvent.objects.filter(action="incidents.open", target=f"incident:{incident.pk}").count() == 1


def test_a_private_first_entity_makes_the_incident_private(demo_org):
    incident, _ = _open(demo_org["users"]["alice"], entities=[PRIVATE])
    assert incident.visibility == "private" and incident.owner_team.name == "fraud-ml"


@pytest.mark.parametrize(("username", "entities", "status", "field"), [
    ("carol", [PRIVATE], 404, "entities"),  # another team's private model: as if missing
    ("bob", ["component:default/nope"], 404, "entities"),
    ("bob", ["not a ref at all"], 404, "entities"),
    ("bob", [], 400, "entities"),  # neither an entity nor a team
])
def test_refused_entities_write_nothing(demo_org, username, entities, status, field):
    with pytest.raises(services.IncidentError) as refused:
        _open(demo_org["users"][username], entities=entities)
    assert (refused.value.status, refused.value.field) == (status, field)
    assert not Incident.objects.exists() and not AuditEvent.objects.filter(action="incidents.open").exists()


@pytest.mark.parametrize(("overrides", "field"), [
    ({"title": "   "}, "title"), ({"title": "x" * 201}, "title"), ({"severity": "sev9"}, "severity"),
    ({"severity": None}, "severity"), ({"summary": "y" * 10001}, "summary"), ({"team": "no-such-team"}, "team"),
])
def test_bad_fields_are_named(demo_org, overrides, field):
    with pytest.raises(services.IncidentError) as refused:
        _open(demo_org["users"]["bob"], **overrides)
    assert refused.value.field == field and refused.value.status == 400
    assert not Incident.objects.exists()


def test_a_viewer_may_not_open_and_a_chosen_team_must_be_ones_own(demo_org):
    with pytest.raises(PermissionDenied):
        _open(demo_org["users"]["heidi"])  # viewer in fraud-ml only
    with pytest.raises(services.IncidentError) as refused:
        _open(demo_org["users"]["bob"], team="recsys")
    assert refused.value.status == 403
    incident, _ = _open(demo_org["users"]["carol"], entities=[API], team="recsys")  # a consumer team declares it
    assert incident.owner_team.name == "recsys"


def test_open_incident_is_idempotent_per_dedup_key_while_unresolved(demo_org):
    """OPS contract: portal.incidents.services.open_incident, as an SLO page-level burn calls it."""
    service = Entity.objects.get(ref=SERVICE)
    first = services.open_incident(title="Error budget burning", severity="sev1", source="slo",
                                   dedup_key="slo:fraud-availability", entities=[service, "component:default/gone"],
                                   summary="burn rate 15 over 1h")
    again = services.open_incident(title="Error budget burning", severity="sev1", source="slo",
                                   dedup_key="slo:fraud-availability", entities=[service], summary="still")
    assert again.pk == first.pk and Incident.objects.count() == 1
    assert first.source == "slo" and first.opened_by is None and first.opened_by_label == "plinth"
    assert TimelineEntry.objects.filter(incident=first, kind=EntryKind.UNLINKED).count() == 1  # kept, said so
    services.incident_transition(actor=demo_org["users"]["bob"], incident_id=first.pk, status="resolved")
    later = services.open_incident(title="Error budget burning", severity="sev1", source="slo",
                                   dedup_key="slo:fraud-availability", entities=[service], summary="again")
    assert later.pk != first.pk  # the key is free once the incident is resolved


def test_acknowledge_resolve_reopen_with_mtta_and_mttr(demo_org):
    bob = demo_org["users"]["bob"]
    incident, _ = _open(bob)
    opened = timezone.now() - timedelta(minutes=90)
    Incident.objects.filter(pk=incident.pk).update(opened_at=opened)
    acked, changed = services.incident_transition(actor=bob, incident_id=incident.pk, status="acknowledged",
                                                  note="on it")
    assert changed and acked.status == Status.ACKNOWLEDGED
    assert 89 * 60 < acked.mtta_seconds < 91 * 60 and acked.mttr_seconds is None
    same, changed = services.incident_transition(actor=bob, incident_id=incident.pk, status="acknowledged")
    assert not changed and same.version == acked.version  # a double click changes nothing
    resolved, _ = services.incident_transition(actor=bob, incident_id=incident.pk, status="resolved")
    first_ack = resolved.acknowledged_at
    assert 89 * 60 < resolved.mttr_seconds < 91 * 60
    reopened, _ = services.incident_transition(actor=bob, incident_id=incident.pk, status="open", note="back")
    assert reopened.resolved_at is None and reopened.acknowledged_at == first_ack and reopened.mttr_seconds is None
    kinds = list(TimelineEntry.objects.filter(incident=incident).values_list("kind", "text"))
    assert kinds[1:] == [("acknowledged", "Acknowledged: on it"), ("resolved", "Resolved"), ("reopened", "Reopened: back")]
    assert AuditEvent.objects.filter(target=f"incident:{incident.pk}").count() == 4


def test_moves_the_state_machine_does_not_allow_are_409(demo_org):
    bob = demo_org["users"]["bob"]
    incident, _ = _open(bob)
    assert services.incident_transition(actor=bob, incident_id=incident.pk, status="open")[1] is False  # already
    services.incident_transition(actor=bob, incident_id=incident.pk, status="acknowledged")
    with pytest.raises(services.IncidentError) as refused:
        services.incident_transition(actor=bob, incident_id=incident.pk, status="open")  # reopen: resolved only
    assert refused.value.status == 409
    services.incident_transition(actor=bob, incident_id=incident.pk, status="resolved")
    with pytest.raises(services.IncidentError) as refused:
        services.incident_transition(actor=bob, incident_id=incident.pk, status="acknowledged")
    assert refused.value.status == 409 and "resolved" in refused.value.message
    with pytest.raises(services.IncidentError) as refused:
        services.incident_transition(actor=bob, incident_id=incident.pk, status="closed")
    assert (refused.value.status, refused.value.field) == (400, "status")


def test_resolving_unacknowledged_by_a_person_acknowledges_it(demo_org):
    bob = demo_org["users"]["bob"]
    incident, _ = _open(bob)
    resolved, _ = services.incident_transition(actor=bob, incident_id=incident.pk, status="resolved")
    assert resolved.acknowledged_at == resolved.resolved_at


def test_who_responds(demo_org):
    users = demo_org["users"]
    incident, _ = _open(users["bob"])
    private, _ = _open(users["alice"], entities=[PRIVATE])
    with pytest.raises(services.IncidentError) as refused:  # viewer of the owning team
        services.incident_transition(actor=users["heidi"], incident_id=incident.pk, status="acknowledged")
    assert refused.value.status == 403
    with pytest.raises(services.IncidentError) as refused:  # another team: sees it (internal), may not respond
        services.incident_note(actor=users["carol"], incident_id=incident.pk, text="we see it too")
    assert refused.value.status == 403
    with pytest.raises(services.IncidentError) as refused:  # another team's private incident: 404
        services.incident_transition(actor=users["carol"], incident_id=private.pk, status="acknowledged")
    assert refused.value.status == 404
    services.incident_transition(actor=users["grace"], incident_id=private.pk, status="acknowledged")  # platform admin
    assert services.incident_note(actor=users["alice"], incident_id=incident.pk, text="rolled back").kind == "note"


def _docs(ref: str, path: str, title: str) -> None:
    entity = Entity.objects.get(ref=ref)
    site, _ = DocSite.objects.get_or_create(entity=entity, defaults={"status": "ok"})
    DocPage.objects.create(site=site, path=path, source_path=f"{path or 'index'}.md", title=title)


def test_the_postmortem_must_be_a_docs_page_that_exists_and_is_visible(demo_org):
    users = demo_org["users"]
    incident, _ = _open(users["carol"], entities=[RANKER])
    _docs(RANKER, "postmortems/inc-1/", "Ranker outage 2026-12-03")
    _docs(PRIVATE, "postmortems/secret/", "Chargeback review")  # fraud-ml's private model
    linked = services.incident_set_postmortem(
        actor=users["carol"], incident_id=incident.pk,
        url="http://testserver/docs/model/default/product-ranker/postmortems/inc-1/")
    assert (linked.postmortem_entity.ref, linked.postmortem_path) == (RANKER, "postmortems/inc-1/")
    assert linked.postmortem_title == "Ranker outage 2026-12-03"
    for url, status in [("/docs/model/default/product-ranker/postmortems/missing/", 404),
                        ("/docs/model/default/chargeback-predictor/postmortems/secret/", 404),  # not hers to see
                        ("/catalog/model/default/product-ranker/", 400), ("javascript:alert(1)", 400),
                        ("https://[testserver/docs/model/default/product-ranker/", 400)]:  # unreadable: no crash
        with pytest.raises(services.IncidentError) as refused:
            services.incident_set_postmortem(actor=users["carol"], incident_id=incident.pk, url=url)
        assert (refused.value.status, refused.value.field) == (status, "postmortem"), url
    assert Incident.objects.get(pk=incident.pk).postmortem_path == "postmortems/inc-1/"  # unchanged
    cleared = services.incident_set_postmortem(actor=users["carol"], incident_id=incident.pk, url="")
    assert cleared.postmortem_entity is None


def test_the_owning_team_is_notified_once(demo_org):
    users = demo_org["users"]
    incident, _ = _open(users["bob"])
    # fraud-ml: alice maintainer, bob member (opened it), heidi viewer, frank reviewer.
    assert tasks.notify.run(incident.pk, "opened", 0) == 1
    assert tasks.notify.run(incident.pk, "opened", 0) == 0  # delivered twice: still one
    told = list(Notification.objects.filter(kind="incident-opened").values_list("user__username", "url"))
    assert told == [("alice", incident.get_absolute_url())]
    unowned = services.open_incident(title="Unknown service down", severity="sev3", source="alertmanager",
                                     dedup_key="x", entities=[], summary="")
    tasks.notify.run(unowned.pk, "opened", 0)
    assert set(Notification.objects.filter(key__startswith=f"incident:opened:{unowned.pk}:")
               .values_list("user__username", flat=True)) == {"grace"}


def test_a_title_on_two_lines_still_gets_its_mail_out(demo_org):
    """An alert's summary may span lines: the e-mail's subject (one header line) gets it on one line;
    before, the mail server refused the header and the task retried until it gave up."""
    from django.core import mail

    mail.outbox.clear()
    incident = services.open_incident(title="Checkout down\nin eu-west", severity="sev2", source="alertmanager",
                                      dedup_key="two-lines", entities=[], summary="")
    assert tasks.notify.run(incident.pk, "opened", 0) == 1
    note = Notification.objects.get(key__startswith=f"incident:opened:{incident.pk}:")
    assert note.emailed
    assert [m.subject for m in mail.outbox] == ["[Plinth] SEV2 incident for the platform admins: Checkout down in eu-west"]


def test_the_facts_and_the_timeline_read_the_same_moments(demo_org):
    """The detail page shows Opened/Acknowledged/Resolved from the incident's columns and the timeline from
    its entries: every write sets both from one clock reading (a test that back-dates `opened_at` alone
    makes the page disagree with itself)."""
    bob = demo_org["users"]["bob"]
    incident, _ = _open(bob)
    services.incident_transition(actor=bob, incident_id=incident.pk, status="acknowledged")
    services.incident_transition(actor=bob, incident_id=incident.pk, status="resolved")
    incident.refresh_from_db()
    at = dict(TimelineEntry.objects.filter(incident=incident).values_list("kind", "at"))
    assert (at[EntryKind.OPENED], at[EntryKind.ACKNOWLEDGED], at[EntryKind.RESOLVED]) == (
        incident.opened_at, incident.acknowledged_at, incident.resolved_at)
