"""Hourly rollup rows other than the organisation's distinct users (type "*", team NULL, subject "*")
were written per type × team and read by nothing (rollup.GRAIN_ROWS): delete them. One DELETE over the
(grain, type, …) index; the rollup no longer writes them, so nothing brings them back and reversing
needs nothing (`manage.py insights rollup --days N` recomputes what the raw events still hold)."""

from django.db import migrations


def delete_unread_hourly_rows(apps, schema_editor):
    Rollup = apps.get_model("insights", "Rollup")
    (Rollup.objects.filter(grain="hourly")
     .exclude(type="*", team__isnull=True, subject="*").delete())


class Migration(migrations.Migration):

    dependencies = [
        ("insights", "0011_template_run_cancelled_event_type"),
    ]

    operations = [
        migrations.RunPython(delete_unread_hourly_rows, migrations.RunPython.noop, elidable=True),
    ]
