"""The incident writes on PostgreSQL (run by `make test`'s production-profile pass): the multi-row
inserts of alerts (jsonb labels) and timeline entries, the partial unique index per dedup key, the
facts and KPI queries."""

import pytest

from tests.incidents import test_facts_kpis as facts
from tests.incidents import test_services as svc
from tests.incidents import test_webhook as webhook
from tests.incidents.test_webhook import am  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_alertmanager_notifications_on_postgresql(am):  # noqa: F811
    webhook.test_repeats_change_nothing_and_resolution_resolves(am)


def test_a_thousand_alerts_on_postgresql(am):  # noqa: F811
    webhook.test_a_notification_costs_the_same_queries_for_5_or_1000_alerts(am)


def test_dedup_key_and_states_on_postgresql(demo_org):
    svc.test_open_incident_is_idempotent_per_dedup_key_while_unresolved(demo_org)
    svc.test_acknowledge_resolve_reopen_with_mtta_and_mttr(demo_org)


def test_facts_on_postgresql(demo_org):
    facts.test_the_fact_per_entity_in_one_query(demo_org)


def test_kpis_on_postgresql(demo_org):
    facts.test_mtta_and_mttr_kpis_over_a_period_with_the_one_before(demo_org)
