"""Selectors over the rollups and the events API: shapes, permissions, bad input, CSV safety."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.accounts import services as account_services
from portal.insights import rollup, selectors
from portal.insights.models import Event, Milestone, TeamMilestone

pytestmark = pytest.mark.django_db

D0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


@pytest.fixture
def history(demo_org):
    """Two weeks of events for the demo org, rolled up."""
    users, teams = demo_org["users"], demo_org["teams"]
    rows = []
    for day in range(14):
        at = D0 + timedelta(days=day, hours=10)
        for name in ("alice", "bob") if day < 7 else ("alice", "bob", "carol", "dan"):
            user = users[name]
            team = teams["fraud-ml"] if name in ("alice", "bob") else teams["recsys"]
            rows.append(Event(occurred_at=at, type="page_view", user=user, team=team, subject="site:home"))
            rows.append(Event(occurred_at=at, type="entity_view", user=user, team=team,
                              subject="model:default/fraud-detector"))
        rows.append(Event(occurred_at=at, type="search", user=users["alice"], team=teams["fraud-ml"],
                          subject="fraud", value=3))
        if day >= 7:  # recsys joins in the second week
            rows.append(Event(occurred_at=at, type="search", user=users["dan"], team=teams["recsys"],
                              subject="=cmd|' /C calc'!A0", value=0))
            rows.append(Event(occurred_at=at, type="docs_view", user=users["carol"], team=teams["recsys"],
                              subject="component:default/recsys-api/guide/start/"))
        rows.append(Event(occurred_at=at, type="template_run_started", user=users["bob"], team=teams["fraud-ml"],
                          subject="template:default/ml-service"))
        ok = day % 4 != 0
        rows.append(Event(occurred_at=at + timedelta(minutes=5),
                          type="template_run_succeeded" if ok else "template_run_failed", user=users["bob"],
                          team=teams["fraud-ml"], subject="template:default/ml-service",
                          value=60.0 + day if ok else None))
    Event.objects.bulk_create(rows)
    rollup.rollup_range(D0, D0 + timedelta(days=14))
    Event.objects.all().delete()  # dashboards read rollups only: prove it
    return demo_org


def _api(user) -> Client:
    _, raw = account_services.token_create(user=user, name="insights")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_active_users_with_trend_and_new_vs_returning(history):
    result = selectors.active_users(date(2026, 11, 9), date(2026, 11, 15), "daily")
    assert [r["total_users"] for r in result.data] == [4] * 7
    assert result.data[0]["new_users"] == 2 and result.data[0]["returning_users"] == 2  # carol, dan
    assert result.total == 4 and result.previous_total == 2 and result.trend_pct == 100.0
    assert result.wau == 4 and result.dau == 4.0
    weekly = selectors.active_users(date(2026, 11, 2), date(2026, 11, 15), "weekly")
    assert [(r["date"], r["total_users"]) for r in weekly.data] == [("2026-11-02", 2), ("2026-11-09", 4)]
    team = selectors.active_users(date(2026, 11, 9), date(2026, 11, 15), "daily", team=history["teams"]["recsys"].pk)
    assert team.total == 2
    hourly = selectors.active_users(date(2026, 11, 9), date(2026, 11, 9), "hourly")
    assert hourly.data == [{"date": "2026-11-09 10:00:00", "total_users": 4, "new_users": None,
                            "returning_users": None}]


def test_top_lists(history):
    start, end = date(2026, 11, 2), date(2026, 11, 15)
    [tpl] = selectors.top_templates(start, end)
    assert tpl["entityref"] == "template:default/ml-service" and tpl["count"] == 14
    assert (tpl["succeeded"], tpl["failed"]) == (10, 4) and tpl["success_rate"] == round(10 / 14, 4)
    assert 65 <= tpl["median_duration_s"] <= 68
    assert selectors.top_entities(start, end)[0] == {
        "entityref": "model:default/fraud-detector", "count": 42, "user_days": 42, "last_used": "2026-11-15T00:00:00Z"}
    assert selectors.top_docs(start, end)[0]["entityref"] == "component:default/recsys-api"
    searches = {s["query"]: s for s in selectors.top_searches(start, end)}
    assert searches["fraud"]["count"] == 14 and searches["fraud"]["zero_result_count"] == 0
    assert [z["query"] for z in selectors.zero_result_searches(start, end)] == ["=cmd|' /C calc'!A0"]


def test_usage_selectors_read_rollups_only_and_are_cheap(history):
    start, end = date(2026, 11, 2), date(2026, 11, 15)
    with CaptureQueriesContext(connection) as queries:
        selectors.top_templates(start, end)
        selectors.top_entities(start, end)
        selectors.top_searches(start, end)
        selectors.active_users(start, end, "daily")
    assert not [q for q in queries if "insights_event" in q["sql"]], "no raw event scan"
    assert len(queries) <= 12


def test_funnel_and_time_to_first_model(history):
    from portal.accounts.models import Team

    fraud = history["teams"]["fraud-ml"]
    joined = datetime.now(UTC) - timedelta(days=5)
    Team.objects.filter(pk=fraud.pk).update(created_at=joined)
    TeamMilestone.objects.create(team=fraud, milestone=Milestone.FIRST_MODEL, reached_at=joined + timedelta(days=2))
    today = datetime.now(UTC).date()
    result = selectors.funnel(start=today - timedelta(days=30), end=today)
    steps = {s["milestone"]: s["teams"] for s in result.steps}
    assert result.teams == Team.objects.count()
    assert steps["first_search"] == 2 and steps["first_template_run"] == 1 and steps["first_model"] == 1
    # fraud-ml searched on 2 November, before it was "created": it started then, not in the last 30 days
    assert result.time_to_first_model["teams"] == 0
    since = selectors.funnel(start=date(2026, 11, 1), end=today)
    wait = (joined + timedelta(days=2) - datetime(2026, 11, 2, 10, tzinfo=UTC)).total_seconds() / 86400
    assert since.time_to_first_model["teams"] == 1 and since.time_to_first_model["median_days"] == round(wait, 3)
    mine = selectors.funnel(team=fraud.pk, start=today - timedelta(days=30), end=today)
    assert mine.teams == 1 and mine.per_team[0]["team"] == "fraud-ml"


def test_api_shape_and_team_scoping(history):
    admin = _api(history["users"]["grace"])
    body = admin.get("/api/v1/insights/events?type=active_users&start_date=2026-11-09&end_date=2026-11-15").json()
    assert body["grouping"] == "daily" and len(body["data"]) == 7 and body["summary"]["trend_pct"] == 100.0
    per_user = admin.get("/api/v1/insights/events?type=active_users&start_date=2026-11-09&end_date=2026-11-15"
                         "&per_user=true").json()
    assert {r["user"] for r in per_user["data"]} == {"alice", "bob", "carol", "dan"}
    # A data scientist sees their team's aggregates only, never per-user rows or another team.
    dan = _api(history["users"]["dan"])
    mine = dan.get("/api/v1/insights/events?type=top_entities&start_date=2026-11-02&end_date=2026-11-15").json()
    assert mine["data"][0]["count"] == 14, "recsys's own entity views only"
    assert dan.get("/api/v1/insights/events?type=active_users&per_user=true").status_code == 403
    other = dan.get("/api/v1/insights/events?type=top_entities&team=fraud-ml")
    missing = dan.get("/api/v1/insights/events?type=top_entities&team=no-such-team")
    assert other.status_code == missing.status_code == 400
    assert other.json()["error"]["details"].keys() == {"team"}
    assert other.json()["error"]["message"].replace("fraud-ml", "X") == \
        missing.json()["error"]["message"].replace("no-such-team", "X"), "not a member answers like a missing team"
    assert Client().get("/api/v1/insights/events?type=funnel").status_code == 401


@pytest.mark.parametrize(("query", "param"), [
    ("type=active_users&start_date=2026-11-10&end_date=2026-11-01", "start_date"),
    ("type=active_users&start_date=1926-01-01&end_date=2026-01-01", "end_date"),
    ("type=bogus", "type"),
    ("start_date=2026-11-01", "type"),
    ("type=top_templates&limit=1000000", "limit"),
    ("type=top_templates&limit=ten", "limit"),
    ("type=top_templates&grouping=yearly", "grouping"),
    ("type=top_templates&format=xlsx", "format"),
    ("type=top_templates&start_date=2026-13-45", "start_date"),
    # Date arithmetic near the years 1 and 9999 overflowed (500s): the range has bounds.
    ("type=active_users&end_date=0001-01-05", "end_date"),
    ("type=top_templates&start_date=9999-12-30&end_date=9999-12-31", "start_date"),
    ("type=funnel&start_date=0001-01-01&end_date=0001-01-05", "start_date"),
    ("type=top_templates&per_user=true", "per_user"),
])
def test_bad_input_is_a_400_naming_the_parameter(demo_org, query, param):
    response = _api(demo_org["users"]["grace"]).get(f"/api/v1/insights/events?{query}")
    assert response.status_code == 400, response.content
    assert param in response.json()["error"]["details"]


def test_csv_is_escaped_against_formula_injection(history):
    admin = _api(history["users"]["grace"])
    response = admin.get("/api/v1/insights/events?type=top_searches&start_date=2026-11-02&end_date=2026-11-15"
                         "&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    queries = {r["query"] for r in rows}
    assert "'=cmd|' /C calc'!A0" in queries and "fraud" in queries
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell


def test_safe_cell_rules():
    from portal.insights.export import safe_cell

    assert [safe_cell(v) for v in ["=1+1", "+x", "-x", "@x", "\tx", "\rx", "ok", -3, None]] == [
        "'=1+1", "'+x", "'-x", "'@x", "'\tx", "'\rx", "ok", "-3", ""]


def test_governance_flow_and_catalog_health(demo_org):
    flow = selectors.governance_flow(date(2026, 1, 1), datetime.now(UTC).date())
    assert set(flow) == {"workflows", "stages", "sla", "blocked_by_gate"}
    health = {r["team"]: r for r in selectors.catalog_health()}
    assert health["fraud-ml"]["models"] >= 1
    assert all(r["without_docs"] <= r["entities"] for r in health.values())


def test_a_carriage_return_inside_a_cell_cannot_start_a_new_row():
    """A spreadsheet ends a row at a bare CR: the cell holding one is quoted (CRLF rows), so what follows
    the CR ("=cmd|…") stays inside the cell instead of opening a formula in the next row."""
    from portal.insights.export import to_csv

    text = to_csv([{"query": "x\r=cmd|' /C calc'!A0", "n": 1}])
    assert text.startswith("query,n\r\n") and "\"x\r=cmd|' /C calc'!A0\",1\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["query", "n"], ["x\r=cmd|' /C calc'!A0", "1"]]
