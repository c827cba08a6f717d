"""Active users counted the one way in every grouping — distinct people, members of the teams in scope
(their union, each person once) — and the number of queries that does not grow with the range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts import services as account_services
from portal.insights import rollup, selectors
from portal.insights.models import ActiveUserDay, Event

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 9)
AT = datetime(2026, 11, 9, 10, 15, tzinfo=UTC)
ONE_DAY = f"start_date={DAY}&end_date={DAY}"


def _api(user) -> Client:
    _, raw = account_services.token_create(user=user, name="insights")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _events(*rows) -> None:
    Event.objects.bulk_create([Event(occurred_at=at, type=type_, user=user, team=team, subject=subject)
                               for at, type_, user, team, subject in rows])
    rollup.rollup_range(AT.replace(hour=0, minute=0), AT.replace(hour=0, minute=0) + timedelta(days=1))


def _totals(client, query: str) -> tuple[list[int], int]:
    body = client.get(f"/api/v1/insights/events?type=active_users&{query}").json()
    return [r["total_users"] for r in body["data"]], body["summary"]["total"]


def test_a_member_of_two_teams_active_for_both_in_one_hour_is_one_user(demo_org):
    """frank (risk-governance and fraud-ml) views a page for each team in the same hour: his teams'
    hourly series says 1, as the daily one and the summary do."""
    teams, frank = demo_org["teams"], demo_org["users"]["frank"]
    _events((AT, "page_view", frank, teams["risk-governance"], "site:home"),
            (AT + timedelta(minutes=5), "entity_view", frank, teams["fraud-ml"], "model:default/fraud-detector"))
    api = _api(frank)
    assert _totals(api, f"{ONE_DAY}&grouping=daily") == ([1], 1)
    assert _totals(api, f"{ONE_DAY}&grouping=hourly") == ([1], 1)
    assert _totals(api, ONE_DAY)[0] == [1], "one day's default grouping is hourly"


def test_a_team_counts_its_members_not_whoever_viewed_its_things(demo_org):
    """carol (recsys) views a fraud-ml entity: the event is fraud-ml's, carol is not. fraud-ml's active
    users are none, hourly as daily; recsys's are one (carol), hourly as daily."""
    teams, users = demo_org["teams"], demo_org["users"]
    _events((AT, "entity_view", users["carol"], teams["fraud-ml"], "model:default/fraud-detector"))
    alice = _api(users["alice"])
    for grouping in ("daily", "hourly"):
        assert _totals(alice, f"{ONE_DAY}&grouping={grouping}&team=fraud-ml") == ([], 0), grouping
        assert _totals(_api(users["carol"]), f"{ONE_DAY}&grouping={grouping}") == ([1], 1), grouping
    hourly = selectors.active_users(DAY, DAY, "hourly", team=[teams["recsys"].pk])
    assert hourly.data == [{"date": "2026-11-09 10:00:00", "total_users": 1, "new_users": None,
                            "returning_users": None}]
    assert selectors.active_users(DAY, DAY, "hourly").data == hourly.data  # the organisation: carol once


def test_hours_of_several_days_and_users(demo_org, on_each_backend):
    """Each hour counts the distinct users active in it, over days and teams alike (the rollup writes
    each active day's hours: SQLite and PostgreSQL keep an hour differently)."""
    teams, users = demo_org["teams"], demo_org["users"]
    nxt = AT + timedelta(days=1)
    _events((AT, "page_view", users["alice"], teams["fraud-ml"], "site:home"),
            (AT + timedelta(minutes=30), "page_view", users["bob"], teams["fraud-ml"], "site:home"),
            (AT + timedelta(hours=3), "page_view", users["alice"], teams["fraud-ml"], "site:home"))
    Event.objects.create(occurred_at=nxt.replace(hour=23), type="page_view", user=users["bob"],
                         team=teams["fraud-ml"], subject="site:home")
    rollup.rollup_day(nxt.date())
    data = selectors.active_users(DAY, nxt.date(), "hourly", team=[teams["fraud-ml"].pk]).data
    assert [(r["date"], r["total_users"]) for r in data] == [
        ("2026-11-09 10:00:00", 2), ("2026-11-09 13:00:00", 1), ("2026-11-10 23:00:00", 1)]


def _active_every_day(users, start: date, end: date) -> None:
    day, rows = start, []
    while day <= end:
        rows += [ActiveUserDay(day=day, user=u, events=1) for u in users[: 1 + day.toordinal() % len(users)]]
        day += timedelta(days=1)
    ActiveUserDay.objects.bulk_create(rows)


@pytest.mark.parametrize("grouping", ["weekly", "monthly"])
def test_weekly_and_monthly_series_take_the_same_queries_for_one_month_and_twelve(demo_org, grouping,
                                                                                   on_each_backend):
    """The page and the API ask one query for each series, whatever the number of periods."""
    users = list(demo_org["users"].values())
    end = timezone.now().date()
    _active_every_day(users, end - timedelta(days=730), end)
    page = Client()
    page.force_login(demo_org["users"]["alice"])
    counts = {}
    for days in (30, 365):
        with CaptureQueriesContext(connection) as ctx:
            assert page.get("/insights/active-users/", {"start": (end - timedelta(days=days - 1)).isoformat(),
                                                        "end": end.isoformat(), "grouping": grouping}).status_code == 200
        counts[days] = len(ctx.captured_queries)
    assert counts[30] == counts[365], counts
    api = _api(demo_org["users"]["grace"])
    api.get("/api/v1/insights/events?type=funnel")  # the token's first use writes its last-used time
    for days in (30, 365, 731):
        query = (f"/api/v1/insights/events?type=active_users&grouping={grouping}"
                 f"&start_date={end - timedelta(days=days - 1)}&end_date={end}")
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(query).status_code == 200
        counts[f"api{days}"] = len(ctx.captured_queries)
    assert counts["api30"] == counts["api365"] == counts["api731"], counts


@pytest.mark.parametrize("grouping", ["weekly", "monthly"])
def test_grouped_series_count_each_user_once_per_period_within_the_range(demo_org, grouping, on_each_backend):
    """A period's users are those active on any of its days inside the range (a range starting mid-week
    counts only its own days of that week); checked against a count made here."""
    users, teams = list(demo_org["users"].values()), demo_org["teams"]
    start, end = date(2026, 9, 3), date(2026, 11, 18)  # a Thursday to a Wednesday
    _active_every_day(users, start - timedelta(days=10), end + timedelta(days=10))
    fraud = [teams["fraud-ml"].pk]
    for team in (None, fraud):
        members = None if team is None else set(teams["fraud-ml"].memberships.values_list("user_id", flat=True))
        expected: dict[str, set] = {}
        for day, user in ActiveUserDay.objects.filter(day__gte=start, day__lte=end).values_list("day", "user_id"):
            if members is None or user in members:
                key = (day - timedelta(days=day.weekday()) if grouping == "weekly" else day.replace(day=1)).isoformat()
                expected.setdefault(key, set()).add(user)
        got = selectors.active_users(start, end, grouping, team=team).data
        assert [(r["date"], r["total_users"]) for r in got] == [(k, len(v)) for k, v in sorted(expected.items())]
        series = selectors.active_users_series(start, end, grouping, team=team)
        assert [(r["date"], r["total_users"]) for r in series] == [(k, len(v)) for k, v in sorted(expected.items())]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_the_days_whose_events_are_kept_their_hours(on_each_backend):
    """insights 0010: active days already rolled up learn their hours from the raw events still kept;
    a day without them keeps none (and shows no hourly activity) instead of a guess."""
    apps = _migrate([("insights", "0009_home_route_renamed")])
    try:
        Event, ActiveUserDay = apps.get_model("insights", "Event"), apps.get_model("insights", "ActiveUserDay")
        User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
        u1, u2 = User.objects.create(username="hours-u1"), User.objects.create(username="hours-u2")
        for at, user in ((AT, u1), (AT + timedelta(minutes=25), u1), (AT + timedelta(hours=3), u1),
                         (AT.replace(hour=23, minute=59), u2), (AT + timedelta(days=1), u2)):
            Event.objects.create(occurred_at=at, type="page_view", user=user, subject="site:home")
        for day, user in ((DAY, u1), (DAY, u2), (DAY - timedelta(days=5), u1), (DAY + timedelta(days=2), u2)):
            ActiveUserDay.objects.create(day=day, user=user, events=1)
        apps = _migrate([("insights", "0010_active_user_hours")])
        ActiveUserDay = apps.get_model("insights", "ActiveUserDay")
        hours = {(r.day, r.user.username): r.hours for r in ActiveUserDay.objects.select_related("user")}
        assert hours == {(DAY, "hours-u1"): 1 << 10 | 1 << 13, (DAY, "hours-u2"): 1 << 23,
                         (DAY - timedelta(days=5), "hours-u1"): 0, (DAY + timedelta(days=2), "hours-u2"): 0}
    finally:
        _migrate(sorted(MigrationLoader(connection).graph.leaf_nodes()))
