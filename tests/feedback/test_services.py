"""Feedback services: one answer per user and target, bad input refused with a message and no change,
hidden targets answered like missing ones, who answers, votes, and the notifications they cause."""

from __future__ import annotations

import pytest
from django.core import mail

from portal.core.models import AuditEvent
from portal.feedback import services
from portal.feedback.models import FeedbackItem, Status, Vote
from portal.governance.models import Notification, OutboxMessage
from tests.feedback.conftest import drain
from tests.insights.conftest import capture_buffer  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def give(user, **kwargs):
    kwargs.setdefault("kind", "entity")
    kwargs.setdefault("useful", True)
    return services.feedback_give(actor=user, **kwargs)


def test_one_answer_per_user_and_target_changeable(fb):
    dan, ref = fb["users"]["dan"], fb["public"].ref
    item, created = give(dan, target=ref, useful=True)
    assert created and item.owner_team == fb["teams"]["fraud-ml"] and item.target_label == "Fraud scorer"
    again, created = give(dan, target=ref.upper(), useful=False, comment="Missing the *threshold*")
    assert not created and again.pk == item.pk
    item.refresh_from_db()
    assert (item.useful, item.comment) == (False, "Missing the *threshold*")
    assert FeedbackItem.objects.count() == 1
    # Another person's answer about the same target is their own row.
    give(fb["users"]["carol"], target=ref)
    assert FeedbackItem.objects.count() == 2


def test_docs_pages_and_runs_are_separate_targets(fb):
    dan = fb["users"]["dan"]
    index, _ = give(dan, kind="docs", target=fb["public"].ref, path="")
    guide, _ = give(dan, kind="docs", target=fb["public"].ref, path="/guide/")
    run_item, _ = give(dan, kind="template", target=str(fb["run"].uid), comment="Took 3 tries")
    assert len({index.pk, guide.pk, run_item.pk}) == 3
    assert guide.docs_path == "guide/" and guide.target_label == "Fraud scorer docs: Guide"
    assert run_item.entity == fb["template"] and run_item.owner_team == fb["teams"]["fraud-ml"]


def test_bad_input_is_refused_with_a_message_and_changes_nothing(fb, settings):
    dan, ref = fb["users"]["dan"], fb["public"].ref
    settings.PLINTH_FEEDBACK_MAX_COMMENT_CHARS = 50
    cases = [
        ({"comment": "x" * 51}, 400, "at most 50"),
        ({"kind": "dataset"}, 400, "Unknown kind"),
        ({"useful": None}, 400, "yes or no"),
        ({"target": "component:default/nope"}, 404, "No such"),
        ({"target": ""}, 404, "No such"),
        ({"kind": "docs", "path": "missing/"}, 404, "No such"),
        ({"kind": "template", "target": "not-a-uuid"}, 404, "No such"),
        ({"kind": "platform", "title": ""}, 400, "title"),
        ({"kind": "platform", "title": "t" * 201}, 400, "at most 200"),
    ]
    for extra, status, words in cases:
        with pytest.raises(services.FeedbackError) as caught:
            give(dan, **{"target": ref, **extra})
        assert caught.value.status == status and words in caught.value.message, (extra, caught.value.message)
    assert not FeedbackItem.objects.exists() and not OutboxMessage.objects.exists()


def test_a_target_hidden_from_the_user_is_answered_like_a_missing_one(fb):
    dan = fb["users"]["dan"]
    answers = []
    for kind, target in [("entity", fb["private"].ref), ("entity", "component:default/missing"),
                         ("docs", fb["private"].ref), ("template", str(fb["run"].uid))]:
        user = fb["users"]["carol"] if kind == "template" else dan  # the run is dan's own
        with pytest.raises(services.FeedbackError) as caught:
            give(user, kind=kind, target=target)
        answers.append((caught.value.status, caught.value.message))
    assert len(set(answers)) == 1 and answers[0][0] == 404
    # The owning team's members may give feedback on it.
    item, _ = give(fb["users"]["member"], target=fb["private"].ref)
    assert item.entity == fb["private"]


def test_ideas_go_to_the_platform_team_and_a_double_submit_is_one_row(fb):
    dan = fb["users"]["dan"]
    first, created = give(dan, kind="platform", title="Dark mode", comment="Please", client_key="k1")
    second, created_again = give(dan, kind="platform", title="Dark mode", comment="Please", client_key="k1")
    assert created and not created_again and first.pk == second.pk
    give(dan, kind="platform", title="Dark mode", client_key="k2")  # a new form: a new idea
    assert FeedbackItem.objects.filter(kind="platform").count() == 2
    assert first.owner_team == fb["teams"]["platform"] and first.useful is None
    # An entity no team owns: the platform team triages its feedback.
    orphan, _ = give(dan, target=fb["orphan"].ref)
    assert orphan.owner_team == fb["teams"]["platform"]


def test_the_owning_team_is_notified_once_and_the_author_of_each_answer(fb):
    dan, maint = fb["users"]["dan"], fb["users"]["maint"]
    give(dan, target=fb["public"].ref, useful=True)  # a bare "yes": a tally, nobody is notified
    assert drain() == []
    item, _ = give(dan, target=fb["public"].ref, useful=False, comment="The example fails")
    give(dan, target=fb["public"].ref, useful=False, comment="The example fails, on v2 too")  # asked already
    assert len(drain()) == 1
    notes = Notification.objects.filter(kind="feedback-new")
    assert sorted(n.user.username for n in notes) == ["maint"]  # maintainers and admins, not members/viewers
    assert notes[0].url == item.get_absolute_url() and notes[0].request is None
    assert any("New feedback for fraud-ml" in m.subject for m in mail.outbox)

    services.feedback_answer(actor=maint, item_id=item.pk, status="planned", answer="Fixed in **v3**")
    services.feedback_answer(actor=maint, item_id=item.pk, status="planned", answer="Fixed in **v3**")  # no change
    services.feedback_answer(actor=maint, item_id=item.pk, status="done", answer="Shipped")
    drain()
    told = Notification.objects.filter(user=dan, kind="feedback-answered").order_by("id")
    assert [n.message for n in told] == ["Your feedback is planned: Not useful: Fraud scorer",
                                         "Your feedback is done: Not useful: Fraud scorer"]
    assert AuditEvent.objects.filter(action="feedback.answer", target=f"feedback:{item.pk}").count() == 2
    # Running a delivered task again writes no second notification.
    from portal.feedback.tasks import notify

    assert notify(item.pk, "answered", 1) == 0


def test_who_answers(fb):
    users = fb["users"]
    item, _ = give(users["dan"], target=fb["public"].ref, comment="Needs an example")
    for name in ("member", "viewer", "dan", "carol", "pmaint"):
        with pytest.raises(services.FeedbackError) as caught:
            services.feedback_answer(actor=users[name], item_id=item.pk, status="planned", answer="")
        assert caught.value.status == 403, name
    for name in ("maint", "root"):
        services.feedback_answer(actor=users[name], item_id=item.pk, status="planned", answer=f"by {name}")
    with pytest.raises(services.FeedbackError) as caught:
        services.feedback_answer(actor=users["maint"], item_id=item.pk, status="shipped", answer="")
    assert caught.value.status == 400 and "Unknown status" in caught.value.message
    item.refresh_from_db()
    assert (item.status, item.answer) == (Status.PLANNED, "by root")
    # An author who maintains the owning team answers as its maintainer.
    own, _ = give(users["maint"], target=fb["public"].ref, comment="Our own todo")
    assert services.feedback_answer(actor=users["maint"], item_id=own.pk, status="done", answer="ok").status == "done"
    # Feedback on a private entity: another team cannot even find it.
    private, _ = give(users["member"], target=fb["private"].ref, comment="secret")
    with pytest.raises(services.FeedbackError) as caught:
        services.feedback_answer(actor=users["carol"], item_id=private.pk, status="done", answer="")
    assert caught.value.status == 404


def test_votes_toggle_once_per_person_never_the_author_never_on_closed_items(fb):
    users = fb["users"]
    item, _ = give(users["dan"], kind="platform", title="Export as CSV")
    assert services.feedback_vote(actor=users["carol"], item_id=item.pk)[1] is True
    assert services.feedback_vote(actor=users["carol"], item_id=item.pk, voted=True)[1] is True  # a double click
    assert Vote.objects.filter(item=item).count() == 1
    assert services.feedback_vote(actor=users["carol"], item_id=item.pk)[1] is False
    assert not Vote.objects.exists()
    with pytest.raises(services.FeedbackError) as caught:
        services.feedback_vote(actor=users["dan"], item_id=item.pk)
    assert caught.value.status == 403
    services.feedback_answer(actor=users["padmin"], item_id=item.pk, status="declined", answer="Out of scope")
    with pytest.raises(services.FeedbackError) as caught:
        services.feedback_vote(actor=users["carol"], item_id=item.pk)
    assert caught.value.status == 409 and "declined" in caught.value.message
    with pytest.raises(services.FeedbackError) as caught:
        services.feedback_vote(actor=users["carol"], item_id=987654)
    assert caught.value.status == 404


def test_feedback_is_kept_when_the_broker_is_down_and_relayed_later(fb, monkeypatch, django_capture_on_commit_callbacks):
    """The notification is an outbox row: with the broker refusing, the feedback stands, the row waits
    (with the error), and the relay publishes it once the broker is back."""
    from portal.celery import app
    from portal.governance import outbox

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        item, _ = give(fb["users"]["dan"], target=fb["public"].ref, useful=False, comment="Broken link")
    row = OutboxMessage.objects.get(key=f"feedback:{item.pk}:new:0")
    assert FeedbackItem.objects.filter(pk=item.pk).exists()
    assert row.sent_at is None and "broker down" in row.last_error
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kwargs: sent.append((name, args)))
    assert outbox.relay()["sent"] == 1
    assert sent == [("portal.feedback.tasks.notify", [item.pk, "new", 0, ""])]


def test_feedback_is_an_analytics_event_of_the_owning_team(fb, capture_buffer):  # noqa: F811
    from portal.insights import capture
    from portal.insights.models import Event, EventType

    dan, ref = fb["users"]["dan"], fb["public"].ref
    give(dan, target=ref, useful=False, comment="Where is the threshold?")
    assert capture.flush_now() == 1
    event = Event.objects.get(type=EventType.FEEDBACK)
    assert (event.user, event.team, event.subject) == (dan, fb["teams"]["fraud-ml"], f"entity:{ref}")
    assert event.data == {"kind": "entity", "useful": False, "created": True}
