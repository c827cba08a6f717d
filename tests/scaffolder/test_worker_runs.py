"""Runs executed by a real Celery worker (Redis broker), including a worker killed mid-run."""

import time

import pytest
from django.test import override_settings

from catalog.models import Entity
from portal.scaffolder import tasks
from portal.scaffolder.models import Run, RunStatus

from .conftest import ml_values, register_template, start, unique

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(run, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if predicate(run):
            return run
        time.sleep(0.2)
    raise AssertionError(
        f"run {run.uid} stuck in {run.status}: {list(run.logs.values_list('message', flat=True))}"
    )


def test_ml_model_service_run_on_a_real_worker(celery_worker_process, org):
    name = unique("wrk")
    run = start(org["users"]["alice"], "ml-model-service", ml_values(name))
    run = wait_for(run, lambda r: r.finished)
    assert run.status == RunStatus.SUCCEEDED, (run.error, celery_worker_process.log[-3000:])
    assert run.attempts == 1
    assert [s.status for s in run.steps.order_by("index")] == ["done", "skipped", "skipped", "done", "done"]
    assert Entity.objects.filter(ref=f"model:default/{name}").exists()
    assert run.duration < 10


WAIT_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %s, title: Slow}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {id: wait, name: Wait, action: debug:wait, input: {seconds: %s}}
    - {id: log, name: Log, action: debug:log, input: {message: done}}
"""


def test_a_run_survives_a_killed_worker(redis_url, celery_worker_process, org, tmp_path):
    """SIGKILL the worker mid-run: the reaper sees the stale heartbeat and resumes the run on a new worker."""
    from tests.conftest import start_celery_worker

    entity = register_template(tmp_path, WAIT_TEMPLATE % (unique("slow"), 6))
    run = start(org["users"]["alice"], entity.name, {}, entity=entity)
    wait_for(
        run, lambda r: r.status == RunStatus.RUNNING and r.logs.filter(message__startswith="waiting").exists()
    )
    celery_worker_process.kill()
    with override_settings(PLINTH_SCAFFOLDER_STALE_SECONDS=1):
        time.sleep(2.5)
        replacement = start_celery_worker(redis_url)
        try:
            assert tasks.reap_stale_runs() == {"resumed": [str(run.uid)], "failed": []}
            run = wait_for(run, lambda r: r.finished)
        finally:
            replacement.stop()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.logs.filter(message__startswith="Resuming (attempt 2)").exists()


def test_a_lost_run_out_of_attempts_fails_clearly(org, tmp_path, settings):
    """No worker at all: after max attempts the reaper fails the run with a message, never 'running' forever."""
    entity = register_template(tmp_path, WAIT_TEMPLATE % (unique("lost"), 1))
    run = start(org["users"]["alice"], entity.name, {}, entity=entity)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, attempts=2, heartbeat_at=None)
    settings.PLINTH_SCAFFOLDER_STALE_SECONDS = 1
    assert tasks.reap_stale_runs()["failed"] == [str(run.uid)]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "worker executing this run stopped" in run.error
