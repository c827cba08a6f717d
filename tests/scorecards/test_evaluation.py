"""Evaluating the demo catalog: stored results and level history, facts read with a constant number of
queries, manual checks (audited, expiring) and campaign notifications sent once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Entity
from portal.core.models import AuditEvent
from portal.governance.models import Notification
from portal.scorecards import facts, services
from portal.scorecards.models import LevelChange, ManualResult, Result

from .conftest import write

pytestmark = pytest.mark.django_db

DETECTOR = "model:default/fraud-detector"
SCORING_API = "api:default/fraud-scoring-api"


def result(ref: str, card: str) -> Result:
    return Result.objects.get(entity__ref=ref, scorecard=card)


def test_the_demo_catalog_is_evaluated_and_explained(demo_org):
    stats = services.evaluate_entities()
    assert stats["entities"] == Entity.objects.count()
    detector = result(DETECTOR, "production-readiness")
    assert detector.total == 10
    assert detector.checks["owner"] == [True, ""]
    assert detector.checks["slo-defined"] == [False, ""]  # no SLO read yet: fails, honestly
    assert detector.checks["approval-on-record"][0] is False  # nothing serves live in the bare demo
    assert detector.owner_team.name == "fraud-ml"
    # Only kinds a scorecard filters for get its results.
    assert not Result.objects.filter(scorecard="production-readiness").exclude(entity__kind_key="model").exists()
    assert not Result.objects.filter(scorecard="service-basics").exclude(
        entity__kind_key__in=["component", "api"]).exists()
    assert LevelChange.objects.filter(entity__ref=DETECTOR).count() == 1  # one scorecard applies, one first level


def test_a_second_pass_writes_nothing_and_records_no_change(demo_org):
    services.evaluate_entities()
    changes = LevelChange.objects.count()
    again = services.evaluate_entities()
    assert again["written"] == 0 and again["changes"] == 0
    assert LevelChange.objects.count() == changes


def test_a_level_change_is_recorded_in_the_history(demo_org):
    services.evaluate_entities()
    api = Entity.objects.get(ref=SCORING_API)
    before = result(SCORING_API, "service-basics")
    assert before.checks["owner"][0] is True and before.level == "Bronze"
    Entity.objects.filter(pk=api.pk).update(owner_team=None)  # the owner team went away
    stats = services.evaluate_entities(entity_ids=[api.pk])
    after = result(SCORING_API, "service-basics")
    assert after.level == "" and after.checks["owner"][0] is False
    assert stats["written"] == 1
    change = LevelChange.objects.filter(entity=api).first()  # newest first
    assert (change.from_level, change.to_level) == ("Bronze", "")


def test_facts_are_read_with_a_constant_number_of_queries(demo_org):
    rows = facts.entity_rows(Entity.objects.order_by("id"))
    some = [r for r in rows if r["ref"] == DETECTOR] + [r for r in rows if r["kind_key"] == "component"][:2]
    with CaptureQueriesContext(connection) as few:
        facts.gather(some)
    with CaptureQueriesContext(connection) as many:
        facts.gather(rows)
    assert len(rows) > 10
    assert len(few) == len(many) == 10  # seven, + the SLOs (portal/slo), the cost (portal.costs), the incidents


def test_a_broken_definition_drops_its_results_and_breaks_nothing(demo_org, card_dir):
    services.evaluate_entities()
    assert Result.objects.filter(scorecard="service-basics").exists()
    write(card_dir, "service-basics.yaml", "name: service-basics\nchecks: [{id: x}]\n")
    services.evaluate_entities()
    assert not Result.objects.filter(scorecard="service-basics").exists()
    assert Result.objects.filter(scorecard="production-readiness").exists()


def _security_review(actor, **overrides):
    api = Entity.objects.get(ref=SCORING_API)
    args = {"actor": actor, "entity": api, "scorecard": "service-basics", "check_id": "security-review",
            "passed": True, "justification": "Pen test 2026-11, report SEC-311",
            "expires_at": timezone.now() + timedelta(days=90)}
    args.update(overrides)
    return services.manual_set(**args)


def test_a_manual_check_is_set_by_an_owner_audited_and_counted(demo_org):
    alice = demo_org["users"]["alice"]
    _security_review(alice)
    assert result(SCORING_API, "service-basics").checks["security-review"] == [True, ""]
    event = AuditEvent.objects.get(action="scorecards.manual.set")
    assert event.actor == "alice"
    assert event.target == f"{SCORING_API}#service-basics/security-review"
    assert "SEC-311" in event.payload


def test_an_expired_manual_answer_fails(demo_org):
    _security_review(demo_org["users"]["alice"])
    ManualResult.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    services.evaluate_entities()
    passed, reason = result(SCORING_API, "service-basics").checks["security-review"]
    assert passed is False and reason.startswith("expired on")


@pytest.mark.parametrize(("overrides", "field"), [
    ({"justification": "  "}, "justification"),
    ({"justification": "x" * 2001}, "justification"),
    ({"expires_at": timezone.now() - timedelta(days=1)}, "expires_at"),
    ({"expires_at": timezone.now() + timedelta(days=400)}, "expires_at"),
    ({"check_id": "owner"}, "check"),
    ({"scorecard": "production-readiness"}, "check"),
])
def test_a_bad_manual_answer_is_refused_and_nothing_is_written(demo_org, overrides, field):
    with pytest.raises(ValidationError) as caught:
        _security_review(demo_org["users"]["alice"], **overrides)
    assert field in caught.value.message_dict
    assert not ManualResult.objects.exists() and not AuditEvent.objects.filter(action="scorecards.manual.set").exists()


def test_only_the_owner_team_answers_a_manual_check(demo_org):
    with pytest.raises(PermissionDenied):
        _security_review(demo_org["users"]["carol"])  # recsys: may see the API, not answer for it
    with pytest.raises(PermissionDenied):
        _security_review(demo_org["users"]["heidi"])  # fraud-ml viewer
    assert not ManualResult.objects.exists()


def test_campaign_owners_are_notified_once(demo_org, card_dir):
    text = (card_dir / "service-basics.yaml").read_text()
    deadline = (timezone.now() + timedelta(days=30)).date().isoformat()
    assert "deadline: 2027-03-31" in text  # the shipped campaign, moved to 30 days from now
    write(card_dir, "service-basics.yaml", text.replace("deadline: 2027-03-31", f"deadline: {deadline}"))
    Entity.objects.filter(ref=SCORING_API).update(data={"kind": "API", "metadata": {"name": "x"}, "spec": {}})
    services.evaluate_entities()
    assert result(SCORING_API, "service-basics").checks["links"][0] is False
    first = services.notify_campaigns()
    assert first >= 3  # alice, bob, heidi of fraud-ml (and frank, a reviewer of the team)
    notes = Notification.objects.filter(kind="scorecard-campaign")
    assert {n.user.username for n in notes} >= {"alice", "bob", "heidi"}
    assert all(f"ends {deadline}" in n.message and n.url.endswith("/campaigns/links/") for n in notes)
    assert services.notify_campaigns() == 0
    assert Notification.objects.filter(kind="scorecard-campaign").count() == notes.count()


def test_a_passed_deadline_notifies_nobody(demo_org, card_dir):
    text = (card_dir / "service-basics.yaml").read_text()
    write(card_dir, "service-basics.yaml", text.replace("deadline: 2027-03-31", "deadline: 2020-01-31"))
    services.evaluate_entities()
    assert Result.objects.filter(scorecard="service-basics", checks__links__0=False).exists()
    assert services.notify_campaigns() == 0
