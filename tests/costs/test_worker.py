"""On a real Celery worker and Redis: an uploaded export is imported and allocated by the worker, a file
dropped in the scheduled location is picked up by the beat task (a bad one moved aside with its error),
and a descriptor change re-allocates (the ResourceId mapping moves cost to the model)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from catalog import services as catalog_services
from catalog.models import Location
from portal.costs import tasks
from portal.costs.models import Allocation, Bucket, CostImport
from tests.conftest import start_celery_worker
from tests.governance.conftest import wait_for

from .conftest import HEADER, line, write_csv

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DESCRIPTOR = """apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: basket-scorer
  annotations:
    plinth.dev/cost-resource-ids: "{ids}"
spec:
  type: classifier
  lifecycle: production
  owner: recsys
"""


def fresh(qs):
    connection.close()  # read what the worker committed
    return qs


@pytest.fixture
def worker(demo_org, redis_url):
    process = start_celery_worker(redis_url)
    yield process
    process.stop()


def test_an_api_upload_is_imported_and_allocated_by_the_worker(demo_org, worker, tmp_path):
    client = Client()
    client.force_login(demo_org["users"]["grace"])
    path = write_csv(tmp_path / "w.csv", [line("12.5", tags={"team": "recsys"}), line("2")])
    with open(path, "rb") as f:
        body = client.post("/api/v1/costs/imports", {"provider": "aws", "file": f}).json()
    done = wait_for(lambda: fresh(CostImport.objects.filter(pk=body["id"], status="done")).first(), timeout=90,
                    what="the worker's import")
    assert done.rows == 2 and not done.path
    # The allocation follows the import's commit in the same task: wait for it too (a busy machine).
    def allocated():
        rows = dict(fresh(Allocation.objects.all()).values_list("bucket", "effective_cost"))
        return rows if Bucket.UNALLOCATED in rows else None

    got = wait_for(allocated, timeout=60, what="the allocation after the import")
    assert float(got[Bucket.TEAM]) == 12.5 and float(got[Bucket.UNALLOCATED]) == 2


def test_the_scheduled_location_is_scanned_and_a_bad_file_set_aside(demo_org, worker, tmp_path, settings):
    drop = tmp_path / "drop"
    drop.mkdir()
    settings.PLINTH_COSTS_DROP_DIR = str(drop)
    write_csv(drop / "gcp__2026-01.csv", [line("3", tags={"team": "fraud-ml"})])
    write_csv(drop / "gcp__broken.csv", [line("3")], header=[h for h in HEADER if h != "ChargePeriodEnd"])
    queued = tasks.scan_drop_dir.run()  # what beat runs; the import itself goes to the worker
    assert len(queued) == 1
    done = wait_for(lambda: fresh(CostImport.objects.filter(status="done", source="scheduled")).first(), timeout=90,
                    what="the scheduled import")
    assert done.provider.name == "gcp" and done.file_name == "gcp__2026-01.csv"
    assert sorted(p.name for p in drop.rglob("*") if p.is_file()) == ["gcp__broken.csv", "gcp__broken.csv.error"]
    assert "missing required FOCUS column ChargePeriodEnd" in (drop / "failed" / "gcp__broken.csv.error").read_text()


def test_a_descriptor_change_reallocates_on_the_worker(demo_org, worker, tmp_path):
    from portal.costs import services

    services.import_now(path=write_csv(tmp_path / "r.csv", [line("9", resource="i-basket-1")]), provider="aws")
    assert Allocation.objects.get().bucket == Bucket.UNALLOCATED
    descriptor = tmp_path / "catalog-info.yaml"
    descriptor.write_text(DESCRIPTOR.format(ids="i-other"), encoding="utf-8")
    catalog_services.location_register(target=str(descriptor), actor=None, file_roots=None)
    descriptor.write_text(DESCRIPTOR.format(ids="i-basket-*"), encoding="utf-8")
    catalog_services.location_refresh(location=Location.objects.get(target=str(descriptor)))
    moved = wait_for(lambda: fresh(Allocation.objects.filter(bucket=Bucket.ENTITY)).first(), timeout=90,
                     what="the worker's reallocation")
    assert moved.entity.ref == "model:default/basket-scorer" and float(moved.effective_cost) == 9
