"""Cancelling runs executed by a real Celery worker (Redis broker): a run cancelled during a slow step ends
"cancelled" with its later steps never run; a run cancelled while its message waits in the queue is
never started by the worker that receives it."""

import time

import pytest

from portal.core.models import AuditEvent
from portal.scaffolder.models import Run, RunStatus

from .conftest import register_template, start, unique
from .test_worker_runs import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLOW_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %s, title: Slow}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {id: before, name: Before, action: debug:log, input: {message: before the wait}}
    - {id: wait, name: Wait, action: debug:wait, input: {seconds: 3}}
    - {id: after, name: After, action: debug:log, input: {message: after the wait}}
    - {id: last, name: Last, action: debug:log, input: {message: the last step}}
"""


def test_a_run_cancelled_during_a_slow_step_ends_cancelled_and_runs_no_later_step(
    celery_worker_process, client, org, tmp_path
):
    entity = register_template(tmp_path, SLOW_TEMPLATE % unique("slow"))
    alice = org["users"]["alice"]
    run = start(alice, entity.name, {}, entity=entity)
    wait_for(run, lambda r: r.status == RunStatus.RUNNING and r.logs.filter(message__startswith="waiting").exists())
    client.force_login(alice)
    response = client.post(f"/api/v1/scaffolder/runs/{run.uid}/cancel")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "running" and response.json()["cancelRequested"] is True
    run = wait_for(run, lambda r: r.finished)
    assert run.status == RunStatus.CANCELLED, (run.error, celery_worker_process.log[-3000:])
    steps = {s.step_id: (s.status, s.message) for s in run.steps.all()}
    assert steps["before"][0] == "done" and steps["wait"][0] == "done", steps  # the step under way finished
    assert steps["after"] == ("skipped", "not run: the run was cancelled")
    assert steps["last"] == ("skipped", "not run: the run was cancelled")
    messages = list(run.logs.values_list("message", flat=True))
    assert "Cancelled by alice." in messages
    assert "after the wait" not in messages and "the last step" not in messages
    assert run.output == {} and run.finished_at is not None
    assert [e.action for e in AuditEvent.objects.filter(target=f"run:{run.uid}").order_by("seq")] == [
        "scaffolder.run.create", "scaffolder.run.cancel", "scaffolder.run.cancelled"]
    again = client.post(f"/api/v1/scaffolder/runs/{run.uid}/cancel")
    assert again.status_code == 409 and again.json()["error"]["state"] == "cancelled"


def test_a_queued_run_cancelled_is_never_started_by_the_worker(redis_url, transactional_db, client, org, tmp_path):
    """The run's message is in Redis before any worker runs; the run is cancelled; a worker then receives
    the message and leaves the run alone."""
    from tests.conftest import start_celery_worker

    entity = register_template(tmp_path, SLOW_TEMPLATE % unique("queued"))
    alice = org["users"]["alice"]
    run = start(alice, entity.name, {}, entity=entity)  # queued on commit, into Redis: nobody consumes yet
    client.force_login(alice)
    response = client.post(f"/create/runs/{run.uid}/cancel/")
    assert response.status_code == 302
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    worker = start_celery_worker(redis_url)
    try:
        deadline = time.monotonic() + 30
        while "execute_run[" not in worker.log or " succeeded in " not in worker.log:
            assert time.monotonic() < deadline, worker.log[-3000:]
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        worker.stop()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.attempts == 0 and run.started_at is None
    assert {s.status for s in run.steps.all()} == {"skipped"}
    messages = list(run.logs.values_list("message", flat=True))
    assert messages == ["Cancelled by alice before it started."], messages
