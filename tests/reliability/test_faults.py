"""Fault injection for every background job, against real processes: Celery workers, our own Redis,
the MLflow server, an SMTP server, git. Every case holds all five jobs mid-task at once (see conftest),
injects one fault, and checks that each job ends done exactly once. docs/reliability.md has the table."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults import (
    SmallDisk,
    active_tasks,
    kill_pool,
    kill_worker,
    redeliver_unacked,
    small_disk,
    wait_for,
    worker_responds,
)

from .conftest import JOBS, CatalogRefresh, DocsBuild, ScaffolderRun, audit_count

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_kill_9_of_the_pool_processes_mid_task_redelivers_every_job_once(bench):
    """kill -9 of the processes running the tasks: Celery requeues each message (acks_late +
    reject_on_worker_lost) and the same worker's new pool processes finish every job, once."""
    worker = bench.start_worker(wait=False)
    bench.add(*JOBS)
    worker.wait_ready()
    hold = bench.start_all_mid_task(worker)
    killed = kill_pool(worker.pid)
    assert killed
    bench.release_holds(hold)
    bench.assert_all_done_once()
    assert worker.alive()
    assert "signal 9" in worker.log or "WorkerLostError" in worker.log


def test_kill_9_of_the_whole_worker_mid_task_is_recovered_by_the_beat_and_nothing_runs_twice(bench):
    """kill -9 of the worker and its pool: its messages stay unacknowledged in Redis until the
    visibility timeout (1 h), so the beat's own recovery brings every job back on a new worker:
    the scaffolder reaper, the docs sweep, the due-location refresh, the next MLflow sync, the outbox
    relay. An hour later Redis hands the old messages out again: they must change nothing."""
    worker = bench.start_worker(wait=False)
    bench.add(*JOBS)
    worker.wait_ready()
    hold = bench.start_all_mid_task(worker)
    kill_worker(worker)
    bench.release_holds(hold)
    assert bench.redis.client().hlen("unacked") >= len(JOBS)
    replacement = bench.start_worker()
    bench.recover_all()
    bench.assert_all_done_once()

    assert redeliver_unacked(bench.redis.url) >= len(JOBS)
    wait_for(
        lambda: bench.redis.queued() == 0 and not active_tasks(replacement.hostname),
        timeout=120, what="the redelivered messages to be processed",
    )
    bench.assert_all_done_once()


@pytest.mark.parametrize("target", ["main process", "process group"])
def test_sigterm_mid_task_lets_every_job_finish_once(bench, target):
    """SIGTERM while every job is mid-task, to the main process (Kubernetes, `celery multi`) or to the
    whole process group (systemd's default KillMode): a warm shutdown, every task finishes on the
    stopping worker (pool processes ignore SIGTERM: portal/celery.py). A message whose ack the
    stopping worker had not sent yet is put back in the queue; a new worker takes it, changing nothing."""
    worker = bench.start_worker(wait=False)
    bench.add(*JOBS)
    worker.wait_ready()
    hold = bench.start_all_mid_task(worker)
    if target == "main process":
        worker.proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(worker.pid, signal.SIGTERM)
    wait_for(lambda: "Warm shutdown" in worker.log, timeout=30, what="the warm shutdown")
    bench.release_holds(hold)
    bench.assert_all_done_once()  # on the stopping worker
    assert worker.proc.wait(timeout=90) == 0, worker.log[-3000:]
    assert "WorkerLostError" not in worker.log
    put_back = bench.redis.queued_tasks()
    if put_back:
        replacement = bench.start_worker()
        wait_for(
            lambda: bench.redis.queued() == 0 and not active_tasks(replacement.hostname),
            timeout=120, what=f"a new worker to take what was put back: {put_back}",
        )
        bench.assert_all_done_once()


def test_redis_down_for_10_s_mid_burst_and_back_empty_loses_nothing(bench):
    """Redis (the broker) stopped while every job is mid-task and more wait in the queue behind them,
    for 10 s, then started again on the same port without its data, as a restart without persistence
    does: every queued message is gone (among them a site's first docs build). A run is also created
    during the outage (its publish fails).
    The jobs in flight finish without a broker; the lost ones come back through the beat's recovery;
    nothing runs twice."""
    worker = bench.start_worker(wait=False)
    in_flight = bench.add(*JOBS)
    queued = bench.add(lambda b: DocsBuild(b, first=True), CatalogRefresh)
    during = bench.add(ScaffolderRun)
    worker.wait_ready()
    hold = bench.start_all_mid_task(worker, in_flight)
    for job in queued:  # every pool process is busy: these wait in Redis
        job.start()
    assert bench.redis.client().llen("celery") == len(queued)
    bench.redis.stop()
    down = time.monotonic()
    bench.release_holds(hold)
    for job in during:
        job.start()  # the service stores the run and must not fail because the broker is down
    assert during[0].run.status == "queued"
    for job in in_flight:  # they need no broker to finish
        job.wait_done()
    time.sleep(max(0.0, 10 - (time.monotonic() - down)))  # the outage lasts 10 s at least: injected
    bench.redis.start()
    assert bench.redis.queued() == 0  # everything that was queued is lost
    bench.reconnect()
    wait_for(lambda: worker_responds(worker.hostname), timeout=60, what="the worker to reconnect")
    bench.recover_all()
    bench.assert_all_done_once()


MiB = 1024 * 1024


@pytest.mark.skipif(SmallDisk.possible() is not None, reason=f"{SmallDisk.possible()}; see docs/reliability.md")
def test_disk_full_while_a_run_publishes_fails_clearly_leaves_nothing_and_the_retry_publishes_once(
    bench, client
):
    """The scaffolder's folder on a 4 MiB tmpfs, filled so that the workspace fits but publishing its
    git repository does not: the run fails with a message that says the disk is full, no half
    repository, checkout, workspace or catalog entry is left; after space is freed, Retry publishes once."""
    from catalog.models import Entity
    from portal.scaffolder.models import PublishedRepository

    with small_disk(4 * MiB) as disk:
        try:
            bench.use_scaffolder_root(disk.path / "scaffolder")
            worker = bench.start_worker(wait=False)
            [job] = bench.add(lambda b: ScaffolderRun(b, wait=0, payload=700 * 1024))
            worker.wait_ready()
            disk.fill(leave=1200 * 1024)
            job.start()
            job.wait_done()
            run = job._reload()
            steps = {s.step_id: s for s in run.steps.all()}
            assert run.status == "failed", run.error
            assert steps["publish"].status == "failed" and steps["register"].status == "skipped", steps
            assert "the disk is full" in run.error and "No space left on device" in run.error, run.error
            assert run.error.startswith("Step 'publish'"), run.error
            assert not job.bare.exists() and not job.checkout.exists()
            assert not PublishedRepository.objects.filter(name=job.template).exists()  # the name is free again
            assert not any((disk.path / "scaffolder" / "workspaces").iterdir())
            assert not Entity.objects.filter(ref=f"component:default/{job.template}").exists()
            assert audit_count("scaffolder.run.failed", f"run:{run.uid}") == 1

            client.force_login(bench.users["alice"])
            page = client.get(run.get_absolute_url()).content.decode()
            assert 'data-testid="run-retry"' in page and "No space left on device" in page
            disk.free()
            response = client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry")
            assert response.status_code == 202, response.content
            job.wait_done()
            job.assert_done_once(failed_before=1)
            assert audit_count("scaffolder.run.retry", f"run:{run.uid}") == 1
        finally:
            bench.stop_workers()  # before the disk goes away under them
