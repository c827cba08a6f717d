"""Cancelling a run, in-process: who may (creator, platform admin; others who see it get 403, others 404),
a queued run ends at once and is never claimed, a running run is asked to stop and its executor ends it
before the next step, a finished run answers 409, CSRF, the audit trail, and the reaper. The same on a
real Celery worker: test_cancel_worker.py."""

import pytest
from django.test import Client

from portal.core.models import AuditEvent
from portal.scaffolder import executor, services
from portal.scaffolder.models import Run, RunStatus

from .conftest import register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %s, title: Cancellable}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {id: first, name: First, action: debug:log, input: {message: first step ran}}
    - {id: second, name: Second, action: debug:log, input: {message: second step ran}}
"""


@pytest.fixture
def queued_run(org, scaffolder_root, tmp_path):
    """Alice's run for her team (fraud-ml), queued (the test process publishes into memory: no worker)."""
    entity = register_template(tmp_path, TEMPLATE % unique("cancel"))
    run = start(org["users"]["alice"], entity.name, {}, entity=entity)
    Run.objects.filter(pk=run.pk).update(owner_team=org["teams"]["fraud-ml"])
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    return run


def api_cancel(client, run):
    return client.post(f"/api/v1/scaffolder/runs/{run.uid}/cancel")


def test_a_queued_run_is_cancelled_at_once_and_never_claimed(client, org, queued_run):
    client.force_login(org["users"]["alice"])
    response = api_cancel(client, queued_run)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "cancelled" and body["cancelRequested"] is True and body["cancelledBy"] == "alice"
    run = Run.objects.get(pk=queued_run.pk)
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    assert services.run_claim(run.pk, "any-task") is None, "a cancelled run must never start"
    assert {s.status for s in run.steps.all()} == {"skipped"}
    assert run.logs.filter(message="Cancelled by alice before it started.").exists()
    assert [e.action for e in AuditEvent.objects.filter(target=f"run:{run.uid}").order_by("seq")] == [
        "scaffolder.run.create", "scaffolder.run.cancel"]
    detail = client.get(f"/api/v1/scaffolder/runs/{run.uid}").json()
    assert detail["status"] == "cancelled" and [s["status"] for s in detail["steps"]] == ["skipped", "skipped"]


def test_a_finished_run_answers_409_with_a_clear_message(client, org, queued_run):
    run = run_inline(queued_run)
    assert run.status == RunStatus.SUCCEEDED
    client.force_login(org["users"]["alice"])
    response = api_cancel(client, run)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["message"] == "This run has already finished (succeeded); there is nothing to cancel."
    assert error["state"] == "succeeded"
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    # The page: no Cancel button on a finished run; a forced POST says why and changes nothing.
    assert 'data-testid="run-cancel"' not in client.get(run.get_absolute_url()).content.decode()
    page = client.post(f"/create/runs/{run.uid}/cancel/", follow=True)
    assert "there is nothing to cancel" in page.content.decode()
    htmx = client.post(f"/create/runs/{run.uid}/cancel/", HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200 and 'data-testid="run-cancel-error"' in htmx.content.decode()
    assert not AuditEvent.objects.filter(target=f"run:{run.uid}", action="scaffolder.run.cancel").exists()


def test_who_may_cancel(client, org, queued_run):
    """Another team: 404 as for a missing run. A viewer (and a maintainer who is not its creator) of the
    run's team sees the run but may not cancel it: 403, no button. Its creator and a platform admin may."""
    users = org["users"]
    client.force_login(users["dan"])  # recsys: the run does not exist for him
    missing = client.post("/api/v1/scaffolder/runs/00000000-0000-0000-0000-000000000000/cancel")
    assert api_cancel(client, queued_run).status_code == 404
    assert api_cancel(client, queued_run).json()["error"]["message"] == missing.json()["error"]["message"]
    assert client.post(f"/create/runs/{queued_run.uid}/cancel/").status_code == 404
    client.force_login(users["heidi"])  # fraud-ml viewer: sees it, may not cancel it
    assert 'data-testid="run-cancel"' not in client.get(queued_run.get_absolute_url()).content.decode()
    assert api_cancel(client, queued_run).status_code == 403
    assert client.post(f"/create/runs/{queued_run.uid}/cancel/").status_code == 403
    assert Run.objects.get(pk=queued_run.pk).status == RunStatus.QUEUED
    client.force_login(users["grace"])  # platform admin
    assert 'data-testid="run-cancel"' in client.get(queued_run.get_absolute_url()).content.decode()
    response = client.post(f"/create/runs/{queued_run.uid}/cancel/")
    assert response.status_code == 302 and response["Location"] == queued_run.get_absolute_url()
    run = Run.objects.get(pk=queued_run.pk)
    assert run.status == RunStatus.CANCELLED and run.cancelled_by == "grace"
    assert AuditEvent.objects.get(target=f"run:{run.uid}", action="scaffolder.run.cancel").actor == "grace"


def test_cancel_needs_a_post_with_the_csrf_token(org, queued_run):
    """A session POST without the token is refused by the page and by the API; GET changes nothing (405)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org["users"]["alice"])
    page = client.get(queued_run.get_absolute_url()).content.decode()
    assert 'data-testid="run-cancel"' in page and 'hx-confirm="Cancel this run?' in page
    assert client.get(f"/create/runs/{queued_run.uid}/cancel/").status_code == 405
    assert client.get(f"/api/v1/scaffolder/runs/{queued_run.uid}/cancel").status_code == 405
    assert client.post(f"/create/runs/{queued_run.uid}/cancel/").status_code == 403
    assert api_cancel(client, queued_run).status_code == 403
    assert Run.objects.get(pk=queued_run.pk).status == RunStatus.QUEUED
    token = client.cookies["csrftoken"].value
    response = client.post(f"/create/runs/{queued_run.uid}/cancel/", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert 'data-status="cancelled"' in fragment and "Cancelled by alice before it started" in fragment
    assert 'data-testid="run-cancel"' not in fragment


def test_a_running_run_stops_before_its_next_step(client, org, queued_run):
    """The request only marks the run; the executor, checking before each step, ends it cancelled."""
    claimed = services.run_claim(queued_run.pk, "task-1")
    client.force_login(org["users"]["alice"])
    response = api_cancel(client, claimed)
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["cancelRequested"] is True
    assert api_cancel(client, claimed).status_code == 202, "asking again is the same request"
    assert AuditEvent.objects.filter(target=f"run:{claimed.uid}", action="scaffolder.run.cancel").count() == 1
    page = client.get(claimed.get_absolute_url()).content.decode()
    assert 'data-testid="run-cancelling"' in page and 'data-testid="run-cancel"' not in page
    run = executor.execute(claimed)
    assert run.status == RunStatus.CANCELLED
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    assert [(s.step_id, s.status) for s in run.steps.order_by("index")] == [("first", "skipped"), ("second", "skipped")]
    messages = list(run.logs.values_list("message", flat=True))
    assert "Cancelled by alice." in messages and "first step ran" not in messages
    assert [e.action for e in AuditEvent.objects.filter(target=f"run:{run.uid}").order_by("seq")] == [
        "scaffolder.run.create", "scaffolder.run.cancel", "scaffolder.run.cancelled"]
    assert api_cancel(client, run).status_code == 409
    # A cancelled run is not a failed one: it cannot be retried.
    retry = client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry")
    assert retry.status_code == 409 and "this one is cancelled" in retry.json()["error"]["message"]


def test_the_reaper_ends_a_lost_run_that_was_asked_to_stop_as_cancelled(org, queued_run, settings):
    """Its worker died after the cancel request: the run is not resumed, it ends cancelled."""
    from datetime import timedelta

    from django.utils import timezone

    run = services.run_claim(queued_run.pk, "task-lost")
    services.run_cancel(run=run, actor=org["users"]["alice"])
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    result = services.runs_reap()
    assert result["cancelled"] == [str(run.uid)] and result["resumed"] == [] and result["failed"] == []
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_cancelled_is_a_status_of_lists_and_badges(client, org, queued_run):
    client.force_login(org["users"]["alice"])
    services.run_cancel(run=queued_run, actor=org["users"]["alice"])
    listing = client.get("/create/runs/").content.decode()
    assert '<span class="badge run-cancelled">Cancelled</span>' in listing
    assert '<span class="badge run-cancelled">Cancelled</span>' in client.get("/create/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_sdk_stops_waiting_on_a_cancelled_run(live_server, org, scaffolder_root, tmp_path):
    """`runs.cancel`, and `cancelled` is final for the SDK too: `runs.wait` returns instead of polling until
    its timeout."""
    from plinth_sdk import Client, errors

    from portal.accounts import services as account_services

    alice = org["users"]["alice"]
    entity = register_template(tmp_path, TEMPLATE % unique("sdk"))
    run = start(alice, entity.name, {}, entity=entity)
    _, token = account_services.token_create(user=alice, name="cancel test")
    with Client(live_server.url, token) as client:
        assert client.runs.cancel(str(run.uid)).status == "cancelled"
        finished = client.runs.wait(str(run.uid), timeout=5, interval=0.2)
        with pytest.raises(errors.ConflictError, match="already finished"):
            client.runs.cancel(str(run.uid))
    assert finished.status == "cancelled" and finished.done and finished.cancelled and not finished.succeeded
