from django.db import migrations, models


def mark_org_wide(apps, schema_editor):
    """Locations registered before ownership claims were checked keep storing what they stored:
    those of the system (no registrant) and of platform admins become org-wide."""
    Location = apps.get_model("catalog", "Location")
    Location.objects.filter(models.Q(created_by__isnull=True) | models.Q(created_by__is_superuser=True)).update(
        org_wide=True)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_rowid_relations_tags"),
    ]

    operations = [
        migrations.AddField(
            model_name="location",
            name="org_wide",
            field=models.BooleanField(default=False),
        ),
        # Backwards the column is dropped by the AddField's reverse: nothing to undo here.
        migrations.RunPython(mark_org_wide, migrations.RunPython.noop),
    ]
