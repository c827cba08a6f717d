"""The production profile: the raw Event table is partitioned by month on PostgreSQL, maintenance
creates partitions ahead, retention drops whole months, and the rollup upsert holds (NULL team)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from portal.insights import partitions, rollup, services
from portal.insights.models import Event, Grain, Rollup

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_event_table_is_partitioned_by_month_with_partitions_ahead():
    assert partitions.is_partitioned()
    names = partitions.partitions()
    this_month = datetime.now(UTC).date().replace(day=1)
    assert "insights_event_default" in names
    assert f"insights_event_p{this_month:%Y%m}" in names
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    assert f"insights_event_p{next_month:%Y%m}" in names, "created ahead by the migration/maintenance"


def test_rows_land_in_their_month_and_old_months_are_dropped_by_retention(settings):
    now = datetime.now(UTC)
    old = datetime(2020, 1, 15, tzinfo=UTC)
    Event.objects.bulk_create([Event(occurred_at=now, type="search", subject="now"),
                               Event(occurred_at=old, type="search", subject="old")])
    # The old row went to the default partition; creating its month moves it there.
    assert partitions.ensure_partitions(start=date(2020, 1, 1), months_ahead=0)[0] == "insights_event_p202001"
    with connection.cursor() as cur:
        cur.execute("SELECT subject FROM insights_event_p202001")
        assert [r[0] for r in cur.fetchall()] == ["old"]
        cur.execute("SELECT count(*) FROM insights_event_default WHERE subject = 'old'")
        assert cur.fetchone()[0] == 0
    settings.PLINTH_ANALYTICS_RETENTION_DAYS = 90
    result = services.events_expire(now=now)
    assert "insights_event_p202001" in result["partitions_dropped"]
    assert list(Event.objects.values_list("subject", flat=True)) == ["now"]
    Event.objects.filter(subject="now").update(subject="now-updated")  # Django addresses rows by id
    assert Event.objects.get().subject == "now-updated"


def test_rollup_null_team_key_is_one_row_on_postgresql():
    h = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    Event.objects.create(occurred_at=h, type="page_view", subject="site:home")
    for _ in range(2):  # hourly buckets have no per type rows (rollup.GRAIN_ROWS): the daily one's key
        rollup.rollup_bucket(Grain.DAILY, h)
    assert Rollup.objects.filter(grain="daily", bucket=h.replace(hour=0), type="page_view", team=None).count() == 1


def test_the_partitioning_migration_reverses_and_reapplies_keeping_rows():
    from types import SimpleNamespace

    editor = SimpleNamespace(connection=connection)
    Event.objects.bulk_create([Event(occurred_at=datetime.now(UTC), type="search", subject=f"r{n}") for n in range(3)])
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    partitions.unpartition_table(None, editor)
    assert not partitions.is_partitioned()
    assert Event.objects.count() == 3
    partitions.partition_table(None, editor)
    assert partitions.is_partitioned() and Event.objects.count() == 3
    Event.objects.create(occurred_at=datetime.now(UTC), type="search", subject="after")  # the id sequence goes on
    assert Event.objects.count() == 4


def test_more_samples_than_one_statement_each_land_on_their_own_row_on_postgresql():
    """A day with 600 searched subjects: 600 daily rows (and more org-wide and hourly ones), each with
    its own sample, written VALUES_ROWS (500) rows a statement."""
    from portal.core.db import VALUES_ROWS

    day = (datetime.now(UTC) - timedelta(days=1)).date()
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    n = VALUES_ROWS + 100
    Event.objects.bulk_create([Event(occurred_at=at + timedelta(minutes=i % 600), type="search", subject=f"q{i}",
                                     value=float(v)) for i in range(n) for v in (i, i + 1000)])
    rollup.rollup_day(day)
    rows = dict(Rollup.objects.filter(grain=Grain.DAILY, type="search", team=None, subject__startswith="q")
                .values_list("subject", "values"))
    assert rows == {f"q{i}": [float(i), float(i + 1000)] for i in range(n)}
