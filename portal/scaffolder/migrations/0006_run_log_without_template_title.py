"""The executor's first log line named the template ("Run of <title> started."). It no longer does (the
log is stored, and whoever reads it later may not be allowed to see the template); this rewrites the line
in runs made before, so the title is not kept in storage. Only the executor's exact line is rewritten:
"Run of " + the run's own template title (or ref) + optional " (dry run)" + " started."."""

from django.db import migrations

BATCH = 500


def forwards(apps, schema_editor):
    RunLog = apps.get_model("scaffolder", "RunLog")
    rows = (RunLog.objects.filter(message__startswith="Run of ", message__endswith=" started.")
            .select_related("run").only("id", "message", "run__template_title", "run__template_ref").order_by("id"))
    changed = []
    for row in rows.iterator(chunk_size=BATCH):
        name = row.run.template_title or row.run.template_ref
        for dry, new in ((" (dry run)", "Run started (dry run)."), ("", "Run started.")):
            if row.message == f"Run of {name}{dry} started.":
                row.message = new
                changed.append(row)
                break
        if len(changed) >= BATCH:
            RunLog.objects.bulk_update(changed, ["message"])
            changed = []
    if changed:
        RunLog.objects.bulk_update(changed, ["message"])


class Migration(migrations.Migration):

    dependencies = [
        ("scaffolder", "0005_run_cancel"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
