"""On a real Celery worker and Redis: a catalog change is evaluated by the worker (queued on commit by the
entities_changed receiver, debounced), and a burst of changes to one entity is one evaluation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Entity, Location
from portal.scorecards.models import DailyRollup, LevelChange, Result
from tests.conftest import start_celery_worker
from tests.governance.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DESCRIPTOR = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger-service
{extra}spec:
  type: service
  lifecycle: production
  owner: fraud-ml
"""


def write(path, extra: str = "") -> None:
    path.write_text(DESCRIPTOR.format(extra=extra), encoding="utf-8")


def result() -> Result | None:
    connection.close()  # read what the worker committed
    return Result.objects.filter(entity__ref="component:default/ledger-service", scorecard="service-basics").first()


def bronze_count() -> int:
    connection.close()
    today = DailyRollup.objects.filter(scorecard="service-basics", day=timezone.now().date(), level="Bronze")
    return sum(today.values_list("count", flat=True)) if today.exists() else -1


def expected_bronze() -> int:
    return Result.objects.filter(scorecard="service-basics", level="Bronze").count()


def test_a_changed_entity_is_evaluated_by_the_worker(demo_org, redis_url, tmp_path, settings):
    worker = start_celery_worker(redis_url)
    try:
        descriptor = tmp_path / "catalog-info.yaml"
        write(descriptor)
        catalog_services.location_register(target=str(descriptor), actor=None, file_roots=None)
        first = wait_for(result, timeout=90, what="the worker's first evaluation")
        assert first.checks["description"] == [False, ""]
        assert first.level == ""  # Bronze needs a description
        write(descriptor, "  description: Double-entry ledger for card payments.\n")
        catalog_services.location_refresh(location=Location.objects.get(target=str(descriptor)))
        second = wait_for(lambda: (r := result()) and r.checks["description"][0] and r,
                          timeout=90, what="the worker's evaluation of the change")
        assert second.level == "Bronze"
        entity = Entity.objects.get(ref="component:default/ledger-service")
        assert list(LevelChange.objects.filter(entity=entity).order_by("at").values_list("from_level", "to_level")) == [
            ("", ""), ("", "Bronze")]
        # The pages' counts follow: the worker refreshes today's rollup after its evaluations.
        wait_for(lambda: bronze_count() == expected_bronze(), timeout=90, what="the worker's rollup refresh")
    finally:
        worker.stop()
