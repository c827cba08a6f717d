"""Relation and tag rows get a plain SQLite rowid instead of AUTOINCREMENT (see RowIdAutoField):
bulk ingestion writes over a million of them, and nothing refers to their ids."""

from django.db import migrations

import portal.core.fields


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_drop_redundant_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="entitytag",
            name="id",
            field=portal.core.fields.RowIdAutoField(primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="relation",
            name="id",
            field=portal.core.fields.RowIdAutoField(primary_key=True, serialize=False),
        ),
    ]
