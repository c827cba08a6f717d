"""Fault injection in the production profile (PostgreSQL + Redis), run by `make test`'s second phase:
PostgreSQL restarted while every job is mid-task, and its disk full while jobs write."""

from __future__ import annotations

import pytest
from django.db import connections
from django.urls import reverse

from tests.faults import SmallDisk, SmallTablespace, crash_restart_postgres, wait_for

from .conftest import JOBS, CatalogRefresh, DocsBuild, MlflowSync, Notifications

MiB = 1024 * 1024

pytestmark = [pytest.mark.prod_smoke, pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]


def test_postgresql_restarted_mid_task_every_job_ends_done_once(bench):
    """PostgreSQL crash-restarts (a server process SIGKILLed: the postmaster ends every session and
    runs crash recovery) while every job is mid-task: the scaffolder run and the docs build and the
    refresh are blocked on a table lock (their write in flight), the sync waits on MLflow, the
    notification on its SMTP server. Every job retries on its own once the database is back, or is
    picked up by the beat's recovery; each ends done exactly once."""
    worker = bench.start_worker(wait=False)
    bench.add(*JOBS)
    worker.wait_ready()
    hold = bench.start_all_mid_task(worker)
    outage = crash_restart_postgres()
    connections.close_all()  # this process's connections died with the server too
    bench.release_holds(hold)
    bench.recover_all()
    bench.assert_all_done_once()
    assert outage < 60


@pytest.mark.skipif(SmallDisk.possible() is not None, reason=f"{SmallDisk.possible()}; see docs/reliability.md")
def test_disk_full_while_jobs_write_fails_each_clearly_stores_nothing_and_the_retry_stores_once(bench, client):
    """The tables the jobs write moved to a tablespace on an 8 MiB tmpfs, filled to the last page: the
    docs build, the refresh, the MLflow sync and the notifications each fail with a message that says
    the disk is full, and none stores any part of its work (the last good pages and entities stay).
    Once space is freed, Rebuild and Refresh now (the buttons) and the jobs' own retries store each
    once."""
    from catalog.models import Entity, Location, MlflowSyncState, ModelVersion
    from portal.governance.models import Notification, OutboxMessage
    from portal.techdocs.models import DocPage, DocSite

    worker = bench.start_worker(wait=False)
    docs, refresh, sync, notes = bench.add(
        lambda b: DocsBuild(b, payload=300_000),
        lambda b: CatalogRefresh(b, payload=40),
        lambda b: MlflowSync(b, payload=100),
        Notifications,
    )
    worker.wait_ready()
    space = SmallTablespace(8 * MiB)
    try:
        for table in ("techdocs_docpage", "catalog_entity", "catalog_modelversion"):
            space.move(table)
        space.move("governance_notification", fillfactor=10)
        space.fill()
        for job in (docs, refresh, sync, notes):
            job.start()
        bench.release_holds()  # no job is held here: each runs into the full disk

        def full(text: str | None) -> bool:
            return bool(text) and ("disk is full" in text or "No space left on device" in text)

        site = wait_for(lambda: DocSite.objects.filter(entity__ref=docs.ref, status="failed").first(),
                        what="the docs build to fail")
        assert full(site.errors[0]["message"]), site.errors
        assert sorted(DocPage.objects.filter(site=site).values_list("title", flat=True)) == ["Guide", "Version 1"]
        location = wait_for(lambda: Location.objects.filter(pk=refresh.location.pk).exclude(refresh_error="").first(),
                            what="the refresh to fail")
        assert full(location.refresh_error), location.refresh_error
        assert Entity.objects.filter(location=location).count() == 1
        assert Entity.objects.get(name=refresh.entity_name).description == "Version 1"
        state = wait_for(lambda: MlflowSyncState.objects.filter(last_error__contains="storing failed").first(),
                         what="the MLflow sync to fail")
        assert full(state.last_error), state.last_error
        assert not Entity.objects.filter(ref=sync.ref).exists() and not ModelVersion.objects.filter(
            entity__ref=sync.ref).exists()
        # The notify task retries three times within ~15 s, then fails ("failed: …"); the waits above
        # can take longer than that, so either word may be on the row by now. The relay publishes it again.
        row = wait_for(lambda: OutboxMessage.objects.filter(request=notes.request, key__contains="notify")
                       .exclude(last_error="").first(), what="the notifications to fail")
        assert row.last_error.startswith(("retrying: ", "failed: ")) and full(row.last_error), row.last_error
        assert not Notification.objects.filter(request=notes.request).exists() and not notes._mails()

        page = client_for(bench.users["alice"]).get(site.get_absolute_url()).content.decode()
        assert "disk is full" in page and "Rebuild" in page
        space.free()
        alice = client_for(bench.users["alice"])
        assert alice.post(f"{site.get_absolute_url()}_rebuild/").status_code == 302
        assert alice.post(reverse("catalog:location-refresh", args=[location.pk])).status_code == 302
        bench.recover_all()
        bench.assert_all_done_once()
    finally:
        bench.stop_workers()
        connections.close_all()
        space.close()


def client_for(user):
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c
