"""The outbox publishes a lost message again: a row sent long ago whose task never finished (a broker
restarted empty, a worker killed with the message) goes out again, a bounded number of times; a row
whose task finished never does. Against the suite's real Redis, with no worker: the messages stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.governance import conf, outbox, services
from portal.governance.models import OutboxMessage

pytestmark = pytest.mark.django_db

PROMOTE = {
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
}


@pytest.fixture
def sent_gates(fraud_versions, users, redis_url):

    req = services.request_create(actor=users["alice"], **PROMOTE)
    row = OutboxMessage.objects.get(request=req, key__endswith=":gates")
    assert outbox.publish(row.pk)
    row.refresh_from_db()
    assert row.sent_at and row.done_at is None and row.attempts == 1
    return row


def later(seconds: int):
    return timezone.now() + timedelta(seconds=seconds)


def test_a_sent_row_never_done_is_published_again_after_the_redelivery_time(sent_gates):
    wait = int(conf.get("OUTBOX_REDELIVER_SECONDS"))
    assert outbox.relay(now=later(wait - 60))["redelivered"] == 0  # its task may still be running
    assert outbox.relay(now=later(wait + 1))["redelivered"] == 1
    sent_gates.refresh_from_db()
    assert sent_gates.attempts == 2 and sent_gates.done_at is None


def test_a_done_row_is_never_published_again(sent_gates):
    outbox.mark_done(sent_gates.pk)
    assert outbox.relay(now=later(10 * int(conf.get("OUTBOX_REDELIVER_SECONDS"))))["redelivered"] == 0
    sent_gates.refresh_from_db()
    assert sent_gates.attempts == 1 and sent_gates.done_at is not None


def test_a_row_that_never_finishes_is_given_up_with_a_message(sent_gates):
    OutboxMessage.objects.filter(pk=sent_gates.pk).update(attempts=int(conf.get("OUTBOX_MAX_DELIVERIES")))
    result = outbox.relay(now=later(int(conf.get("OUTBOX_REDELIVER_SECONDS")) + 1))
    assert result["redelivered"] == 0
    sent_gates.refresh_from_db()
    assert sent_gates.last_error.startswith("given up: the task was published 5 times and never finished")
