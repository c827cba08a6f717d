"""Indexes for the lineage landing (/lineage/): its "recently active" nodes read newest first
(lineage_node_updated, both databases), and its search by part of a name (`name__icontains`, which
PostgreSQL writes `UPPER(name::text) LIKE UPPER(…)`) through a pg_trgm index of that very expression.
SQLite has no index for a substring: there the search reads every node (docs/lineage-performance.md)."""

from django.db import migrations, models

TRGM = "CREATE INDEX IF NOT EXISTS lineage_node_name_trgm ON lineage_node USING gin ((UPPER(name::text)) gin_trgm_ops)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(TRGM)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS lineage_node_name_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0013_discovery_scan_files"),
        ("lineage", "0004_observed_dataset_addresses"),
        ("search", "0002_fulltext"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="node",
            index=models.Index(fields=["updated_at", "id"], name="lineage_node_updated"),
        ),
        migrations.RunPython(forwards, backwards),
    ]
