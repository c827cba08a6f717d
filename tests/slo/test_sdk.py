"""`client.slos` and `plinth slos` against the live server, over SLOs evaluated on the real Prometheus."""

from __future__ import annotations

import json

import pytest
from plinth_sdk import Client
from plinth_sdk.errors import NotFoundError

from portal.slo import services
from tests.sdk.conftest import cli_env, plinth, portal  # noqa: F401 (fixtures)

from .conftest import CHECKOUT_SLO, NOW, register

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def checkout(portal, prometheus, tmp_path):  # noqa: F811
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    return entity


def test_client_and_cli_list_slos(portal, plinth, checkout):  # noqa: F811
    client = Client(portal.url, token=portal.token("alice"))
    (item,) = client.slos.list(entity="component:default/checkout")
    assert item["sli"] == pytest.approx(0.997) and item["errorBudget"]["remaining"] == pytest.approx(0.7)
    assert client.slos.entity("component:default/checkout")["file"] == "slo.yaml"
    with pytest.raises(NotFoundError):
        client.slos.entity("component:default/nothing")
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    listed = plinth("-o", "json", "slos", "--team", "fraud-ml", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "checkout-availability" in {r["name"] for r in json.loads(listed.stdout)}
    table = plinth("slos", "entity", "component:default/checkout", env=env)
    assert table.returncode == 0, table.stderr
    assert "99.70 %" in table.stdout and "70.00 %" in table.stdout and "ALERT page 1h/5m" in table.stdout
