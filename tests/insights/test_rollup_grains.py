"""Which rollup rows each grain is written with (rollup.GRAIN_ROWS): hourly buckets keep only the
organisation's distinct users over every type, the one hourly series read from rollups; per type ×
team hourly rows were read by nothing. Migration 0012 deletes those already written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from portal.insights import rollup, selectors
from portal.insights.models import Event, Grain, Rollup
from tests.factories import MembershipFactory, TeamFactory, UserFactory

DAY = datetime(2026, 11, 3, tzinfo=UTC)
BEFORE, AFTER = ("insights", "0011_template_run_cancelled_event_type"), ("insights", "0012_hourly_rollup_org_users_only")


def _kind(row: Rollup) -> str:
    if row.type != rollup.ANY_TYPE:
        return "per type"
    return "anyone" if row.team_id is None and row.subject == rollup.ALL_SUBJECT else "anyone by team"


@pytest.mark.django_db
def test_each_grain_is_written_with_the_rows_its_readers_use():
    teams = [TeamFactory(name="grain-a"), TeamFactory(name="grain-b")]
    users = [UserFactory(username=f"grain-u{i}") for i in range(3)]
    for i, user in enumerate(users):
        MembershipFactory(user=user, team=teams[i % 2])
    Event.objects.bulk_create([
        Event(occurred_at=DAY + timedelta(hours=h), type=t, user=users[h % 3], team=teams[h % 2], subject=f"s{h % 2}",
              value=float(h) if t == "search" else None)
        for h in range(0, 24, 3) for t in ("search", "page_view")
    ] + [Event(occurred_at=DAY + timedelta(hours=4), type="page_view", user=users[0], subject="site:home")])
    counts = rollup.rollup_day(DAY.date())

    written = {(row.grain, _kind(row)) for row in Rollup.objects.all()}
    assert written == {(Grain.HOURLY, "anyone"),
                       (Grain.DAILY, "per type"), (Grain.DAILY, "anyone by team"), (Grain.DAILY, "anyone"),
                       (Grain.ORG_DAILY, "per type"), (Grain.ORG_WEEKLY, "per type")}
    assert written == {(grain, kind) for grain, kinds in rollup.GRAIN_ROWS.items() for kind in kinds} | {
        (Grain.ORG_WEEKLY, "per type")}, "rollup.GRAIN_ROWS says what is written"
    hourly = Rollup.objects.filter(grain=Grain.HOURLY)
    assert counts["hourly"] == hourly.count() == 9, "one row per active hour, none per type or team"
    assert all(row.values == [] for row in hourly), "no value samples: nothing reads hourly quantiles"
    # What reads them still answers: the organisation's hourly active users, and a team's (from
    # ActiveUserDay.hours, never from rollup rows).
    org = selectors.active_users(DAY.date(), DAY.date(), "hourly").data
    assert [(r["date"][11:13], r["total_users"]) for r in org][:2] == [("00", 1), ("03", 1)]
    team = selectors.active_users(DAY.date(), DAY.date(), "hourly", team=[teams[0].pk]).data
    assert team and all(r["total_users"] >= 1 for r in team)


@pytest.mark.django_db
def test_search_volume_has_no_hourly_grouping():
    with pytest.raises(ValueError, match="grouping: one of daily, weekly, monthly"):
        selectors.search_volume(DAY.date(), DAY.date(), "hourly")


@pytest.fixture
def back_to_the_latest():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(sorted(MigrationLoader(connection).graph.leaf_nodes()))


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest")
def test_migration_deletes_the_unread_hourly_rows_only():
    apps = _migrate(BEFORE)
    Rollup_, Team = apps.get_model("insights", "Rollup"), apps.get_model("accounts", "Team")
    team = Team.objects.create(name="grain-migration")
    for grain, type_, team_, subject in [("hourly", "*", None, "*"), ("hourly", "*", team, ""),
                                         ("hourly", "search", team, ""), ("hourly", "page_view", None, ""),
                                         ("daily", "*", team, ""), ("daily", "search", team, "q"),
                                         ("org_day", "search", None, "q")]:
        Rollup_.objects.create(grain=grain, bucket=DAY, type=type_, team=team_, subject=subject, count=1, users=1)
    apps = _migrate(AFTER)
    left = apps.get_model("insights", "Rollup").objects.values_list("grain", "type", "team_id", "subject")
    assert sorted(left, key=str) == sorted([("hourly", "*", None, "*"), ("daily", "*", team.pk, ""),
                                            ("daily", "search", team.pk, "q"), ("org_day", "search", None, "q")],
                                           key=str)
