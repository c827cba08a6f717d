"""On a real Celery worker, Redis and Prometheus: registering a descriptor with the plinth.dev/openslo
annotation queues (on commit) the reading of its OpenSLO file and an evaluation, which the worker runs
against Prometheus; a later edit of the descriptor is picked up the same way."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog import services as catalog_services
from catalog.models import Location
from portal.slo.models import SLO
from tests.conftest import start_celery_worker
from tests.governance.conftest import wait_for

from .conftest import CHECKOUT_SLO, DESCRIPTOR, register

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Bare counter selectors (sum(increase(…[window]))): the worker evaluates at the real clock, days after the
# test series end, and increase() still finds the last 28 days' samples there.
COUNTERS = CHECKOUT_SLO.replace(
    'sum(http_requests_total{service="checkout",code="500"}) - sum(http_requests_total{service="checkout",code="500"} offset {{.window}})',
    'http_requests_total{service="checkout",code="500"}').replace(
    'sum(http_requests_total{service="checkout"}) - sum(http_requests_total{service="checkout"} offset {{.window}})',
    'http_requests_total{service="checkout"}')


def slos() -> list[SLO]:
    connection.close()  # read what the worker committed
    return list(SLO.objects.filter(entity__ref="component:default/checkout").order_by("name"))


def test_a_registered_slo_is_read_and_evaluated_by_the_worker(demo_org, redis_url, prometheus_url, tmp_path):
    worker = start_celery_worker(redis_url, env={"PLINTH_PROMETHEUS_URL": prometheus_url})
    try:
        folder = tmp_path / "checkout"
        register(folder, "checkout", COUNTERS)
        (first,) = wait_for(lambda: (rows := slos()) and rows[0].checked_at and rows, timeout=90,
                            what="the worker's evaluation")
        assert first.problem == "" and 0.99 < first.sli < 1 and first.budget_unit == "events"
        (folder / "second.yaml").write_text(COUNTERS.replace("checkout-availability", "checkout-second"))
        (folder / "catalog-info.yaml").write_text(DESCRIPTOR.format(name="checkout", path="second.yaml", extra=""))
        catalog_services.location_refresh(location=Location.objects.get(target=str(folder / "catalog-info.yaml")))
        (second,) = wait_for(lambda: (rows := slos()) and rows[0].name == "checkout-second" and rows, timeout=90,
                             what="the worker's reading of the changed descriptor")
        assert second.sli is not None
    finally:
        worker.stop()
