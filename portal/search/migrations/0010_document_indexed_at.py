from django.db import migrations, models


class Migration(migrations.Migration):
    """When each document was written, for the repair sweep's out-of-date check. Documents written
    before this migration are taken as written now (the sweep compares with changes from here on)."""

    dependencies = [
        ("search", "0009_postgres_lexemes"),
    ]

    operations = [
        migrations.AddField(
            model_name="searchdocument",
            name="indexed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            "UPDATE search_searchdocument SET indexed_at = CURRENT_TIMESTAMP",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
