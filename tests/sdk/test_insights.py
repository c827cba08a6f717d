"""`client.insights.events(...)` and `plinth insights events`, against the live server; the server
counts the calls by client (the CLI and the SDK announce themselves in their user agents)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from plinth_sdk import Client
from plinth_sdk.errors import PlinthError

from portal.insights import capture, rollup
from portal.insights.models import Event


def _history(demo_org):
    now = datetime.now(UTC)
    users, teams = demo_org["users"], demo_org["teams"]
    Event.objects.bulk_create([
        Event(occurred_at=now - timedelta(days=d), type="template_run_started", user=users["alice"],
              team=teams["fraud-ml"], subject="template:default/ml-model-service") for d in range(3)])
    rollup.rollup_range(now - timedelta(days=3), now + timedelta(hours=1))


def test_sdk_and_cli_read_insights_and_are_counted_by_client(portal, plinth, demo_org, settings):
    settings.PLINTH_ANALYTICS_REDIS_URL = None
    capture._state.pop("buffer", None)
    _history(demo_org)
    with Client(portal.url, portal.token("alice")) as client:
        body = client.insights.events("top_templates")
        assert body["data"][0]["entityref"] == "template:default/ml-model-service"
        assert body["data"][0]["count"] == 3
        try:
            client.insights.events("top_templates", start_date="2026-12-31", end_date="2026-01-01")
        except PlinthError as exc:
            assert "start_date" in str(exc)
        else:
            raise AssertionError("a reversed range must be refused")
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    out = plinth("-o", "json", "insights", "events", "--type", "top_templates", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"][0]["count"] == 3
    table = plinth("insights", "events", "--type", "active_users", env=env)
    assert table.returncode == 0, table.stderr
    clients = {(i["t"], i["c"]) for i in capture._state["buffer"].items}
    assert ("api_call", "sdk") in clients and ("api_call", "cli") in clients
    capture._state.pop("buffer", None)
