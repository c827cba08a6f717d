"""The home page's route moved from `core:home` to `site:home` (commit 5069b86: the home page left the
core app for portal/site). Page views are recorded by route name, so without this migration the home
page's history would read as two pages, the old one ending on the day of the upgrade.

Raw events and rollup rows named `core:home` take the new name. A rollup row whose bucket already holds
a `site:home` row (the day, hour or week of the upgrade) is folded into it: counts and value sums add up;
`users` adds up in weekly rows (they count user-days) and takes the larger of the two in daily rows (a
person who opened the home page before and after the upgrade that day counts once, as the rollup would
count them; someone who opened only the old one is not counted, which `manage.py insights rollup --days N`
repairs while that day's raw events are kept); the value samples merge.
"""

from django.db import migrations

OLD, NEW = "core:home", "site:home"
SAMPLE = 101  # rollup.SAMPLE: values kept per row


def _sample(values):
    values = sorted(values)
    if len(values) <= SAMPLE:
        return values
    return [values[round(i * (len(values) - 1) / (SAMPLE - 1))] for i in range(SAMPLE)]


def rename(apps, schema_editor):
    db = schema_editor.connection.alias
    Event = apps.get_model("insights", "Event")
    Rollup = apps.get_model("insights", "Rollup")
    Event.objects.using(db).filter(subject=OLD).update(subject=NEW)
    rollups = Rollup.objects.using(db)
    for old in rollups.filter(subject=OLD).order_by("pk").iterator(chunk_size=2000):
        new = rollups.filter(grain=old.grain, bucket=old.bucket, type=old.type, team_id=old.team_id,
                             subject=NEW).first()
        if new is None:
            rollups.filter(pk=old.pk).update(subject=NEW)
            continue
        new.count += old.count
        new.users = new.users + old.users if old.grain == "org_week" else max(new.users, old.users)
        new.value_sum += old.value_sum
        new.value_count += old.value_count
        new.values = _sample([*(new.values or []), *(old.values or [])])
        new.save(update_fields=["count", "users", "value_sum", "value_count", "values"])
        rollups.filter(pk=old.pk).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("insights", "0008_core_weekly_grain"),
    ]

    # Backwards: nothing to undo (the code before this migration records `site:home` as well).
    operations = [migrations.RunPython(rename, migrations.RunPython.noop)]
