"""The filters the API shares with its pages, through the SDK and `plinth` against the live server:
`templates.list(owner=)` / `plinth templates list --owner` (the Create page's exact owner filter)."""

from __future__ import annotations

import json

import pytest
from plinth_sdk import Client, errors

from .test_cli import one_line_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(portal):
    with Client(portal.url, portal.token("alice")) as client:
        yield client


@pytest.fixture
def as_alice(portal, plinth):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    return lambda *args: plinth(*args, env=env)


def test_sdk_templates_owner_filter(alice):
    owned = {t.name for t in alice.templates.list(owner="platform")}
    assert {"feature-set", "ml-model-service"} <= owned
    assert {t.name for t in alice.templates.list(owner="group:default/platform")} == owned
    assert list(alice.templates.list(owner="fraud-ml")) == []
    assert list(alice.templates.list(owner="latform")) == []  # exact, never a suffix
    with pytest.raises(errors.ValidationError) as bad:
        list(alice.templates.list(owner="a:b:c"))
    assert bad.value.status == 400 and bad.value.field == "owner", bad.value.details


def test_cli_templates_owner_option(as_alice):
    listed = json.loads(as_alice("-o", "json", "templates", "list", "--owner", "platform").stdout)
    assert {"feature-set", "ml-model-service"} <= {t["name"] for t in listed}
    assert json.loads(as_alice("-o", "json", "templates", "list", "--owner", "fraud-ml").stdout) == []
    one_line_error(as_alice("templates", "list", "--owner", "a:b:c"), 2, "owner")


def test_sdk_and_cli_scorecard_results_domain_and_unowned(portal, plinth, alice, as_alice, demo_org):
    from portal.scorecards import services
    from portal.scorecards.models import Result
    from tests.factories import EntityFactory

    EntityFactory(kind="Component", name="orphan-svc", owner_team=None, owner_ref="", spec_type="service")
    services.evaluate_entities()
    payments = {r["entity"] for r in alice.scorecards.results("production-readiness", domain="payments")}
    assert "model:default/chargeback-predictor" in payments  # alice's team's private model, in payments
    assert payments == {r["entity"] for r in alice.scorecards.results("production-readiness",
                                                                      domain="domain:default/payments")}
    assert payments.isdisjoint(r["entity"] for r in alice.scorecards.results("production-readiness", domain=""))
    unowned = {r["entity"] for r in alice.scorecards.results("service-basics", unowned=True)}
    assert "component:default/orphan-svc" in unowned and unowned == set(Result.objects.filter(scorecard="service-basics", owner_team__isnull=True)
                          .values_list("entity__ref", flat=True))
    with Client(portal.url, portal.token("carol")) as carol:
        assert "model:default/chargeback-predictor" not in {
            r["entity"] for r in carol.scorecards.results("production-readiness", domain="payments")}
    with pytest.raises(errors.ValidationError) as bad:
        list(alice.scorecards.results("production-readiness", domain="component:default/x"))
    assert bad.value.status == 400 and bad.value.field == "domain", bad.value.details
    listed = json.loads(as_alice("-o", "json", "scorecards", "results", "production-readiness",
                                 "--domain", "payments").stdout)
    assert {r["entity"] for r in listed} == payments
    cli_unowned = json.loads(as_alice("-o", "json", "scorecards", "results", "service-basics", "--unowned").stdout)
    assert {r["entity"] for r in cli_unowned} == unowned
    one_line_error(as_alice("scorecards", "results", "production-readiness", "--domain", "a:b:c/d/e"), 2, "domain")
