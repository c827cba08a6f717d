"""Each active user day learns the hours (UTC) its user was active in (`ActiveUserDay.hours`, bit h for
hour h): a team's hourly active-users series counts distinct people from them, as the daily one does.

Days whose raw events are still kept (`PLINTH_ANALYTICS_RETENTION_DAYS`) get their hours from those
events here, one UPDATE per day; older days keep 0 (no hour known) and show no hourly activity for a
team (the organisation's hourly series reads the all-teams rollup rows). The rollup writes the hours
of every day it rolls up from now on.
"""

from datetime import UTC, datetime, time, timedelta

from django.db import migrations, models


def _hour_sql(vendor: str) -> str:
    if vendor == "sqlite":  # UTC text, "2026-11-09 10:15:00[.ffffff]"
        return "CAST(substr(occurred_at, 12, 2) AS INTEGER)"
    return "CAST(EXTRACT(HOUR FROM occurred_at AT TIME ZONE 'UTC') AS INTEGER)"


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    ActiveUserDay = apps.get_model("insights", "ActiveUserDay")
    Event = apps.get_model("insights", "Event")
    first = Event.objects.using(connection.alias).order_by("occurred_at").values_list("occurred_at", flat=True).first()
    if first is None:
        return
    days = (ActiveUserDay.objects.using(connection.alias).filter(day__gte=first.astimezone(UTC).date())
            .order_by("day").values_list("day", flat=True).distinct())
    qn, ops = connection.ops.quote_name, connection.ops
    table, events = qn(ActiveUserDay._meta.db_table), qn(Event._meta.db_table)
    # Fixed fragments only (table names, the backend's hour expression); every value is a parameter.
    sql = (f"UPDATE {table} SET hours = h.mask FROM (SELECT user_id, SUM(1 << hour_of_day) AS mask FROM "  # noqa: S608
           f"(SELECT DISTINCT user_id, {_hour_sql(connection.vendor)} AS hour_of_day FROM {events} "
           "WHERE occurred_at >= %s AND occurred_at < %s AND user_id IS NOT NULL) AS d GROUP BY user_id) AS h "
           f"WHERE {table}.day = %s AND {table}.user_id = h.user_id")
    with connection.cursor() as cursor:
        for day in list(days):
            lo = datetime.combine(day, time.min, tzinfo=UTC)
            cursor.execute(sql, [ops.adapt_datetimefield_value(lo),
                                 ops.adapt_datetimefield_value(lo + timedelta(days=1)), ops.adapt_datefield_value(day)])


class Migration(migrations.Migration):

    dependencies = [
        ('insights', '0009_home_route_renamed'),
    ]

    operations = [
        migrations.AddField(
            model_name='activeuserday',
            name='hours',
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
