"""insights 0009: page views recorded under the home page's old route name (`core:home`) join its new
one (`site:home`), so the home page's history reads as one page across the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

BEFORE, AFTER = ("insights", "0008_core_weekly_grain"), ("insights", "0009_home_route_renamed")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture
def back_to_the_latest():
    """Migrations after 0009 (0010 added a column the rollup writes) are applied again afterwards: the
    tests that follow, and the workers they start, expect the latest schema."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(sorted(MigrationLoader(connection).graph.leaf_nodes()))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest")
def test_old_home_route_rows_are_renamed_or_folded_into_the_new_ones():
    apps = _migrate(BEFORE)
    Event, Rollup = apps.get_model("insights", "Event"), apps.get_model("insights", "Rollup")
    Team = apps.get_model("accounts", "Team")
    team = Team.objects.create(name="route-rename")
    before, upgrade = datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC)
    Event.objects.create(occurred_at=before, type="page_view", subject="core:home", team=team)
    Event.objects.create(occurred_at=before, type="page_view", subject="catalog:entity-list", team=team)

    def row(grain, bucket, subject, count, users, values=(), team_=team):
        return Rollup.objects.create(grain=grain, bucket=bucket, type="page_view", team=team_, subject=subject,
                                     count=count, users=users, value_sum=sum(values), value_count=len(values),
                                     values=sorted(values))

    row("daily", before, "core:home", 5, 2)  # before the upgrade: renamed
    row("daily", upgrade, "core:home", 3, 2, [1.0, 3.0])  # the upgrade day: folded into the new row
    row("daily", upgrade, "site:home", 4, 3, [2.0])
    row("org_week", upgrade - timedelta(days=6), "core:home", 10, 4, team_=None)
    row("org_week", upgrade - timedelta(days=6), "site:home", 6, 3, team_=None)
    row("daily", upgrade, "core:home-ish", 1, 1)  # another route: untouched

    apps = _migrate(AFTER)
    Event, Rollup = apps.get_model("insights", "Event"), apps.get_model("insights", "Rollup")
    assert sorted(Event.objects.values_list("subject", flat=True)) == ["catalog:entity-list", "site:home"]
    assert not Rollup.objects.filter(subject="core:home").exists()
    rows = {(r.grain, r.bucket, r.subject): r for r in Rollup.objects.all()}
    assert len(rows) == 4
    old = rows[("daily", before, "site:home")]
    assert (old.count, old.users) == (5, 2)
    day = rows[("daily", upgrade, "site:home")]
    assert (day.count, day.users, day.value_sum, day.value_count, day.values) == (7, 3, 6.0, 3, [1.0, 2.0, 3.0])
    week = rows[("org_week", upgrade - timedelta(days=6), "site:home")]
    assert (week.count, week.users) == (16, 7)  # weekly users are user-days: they add up
    assert rows[("daily", upgrade, "core:home-ish")].count == 1
