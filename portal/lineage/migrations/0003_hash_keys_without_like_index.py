"""`Node.key` and `Event.dedupe` (SHA-256 hex) become unique by a named constraint rather than
`unique=True`. On PostgreSQL a unique CharField also carries a `varchar_pattern_ops` index for LIKE,
which no query of a hash uses and every insert maintains: 119 MB beside 1,000,000 events.

The database keeps its unique indexes: on PostgreSQL the pattern-ops indexes are dropped and the unique
constraints take their new names; SQLite has no such index, so only Django's model state changes (a
table rebuild of the event table would cost minutes for nothing)."""

from django.db import migrations, models

# (table, column, PostgreSQL's name for the column's UNIQUE, Django's LIKE index, the new constraint)
KEYS = [
    ("lineage_event", "dedupe", "lineage_event_dedupe_key", "lineage_event_dedupe_141499d8_like",
     "lineage_event_dedupe_once"),
    ("lineage_node", "key", "lineage_node_key_key", "lineage_node_key_d4e84954_like", "lineage_node_key_once"),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _, unique, like, constraint in KEYS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{like}"')
        schema_editor.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{unique}" TO "{constraint}"')


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column, unique, like, constraint in KEYS:
        schema_editor.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{constraint}" TO "{unique}"')
        schema_editor.execute(f'CREATE INDEX "{like}" ON "{table}" ("{column}" varchar_pattern_ops)')


class Migration(migrations.Migration):

    dependencies = [
        ("lineage", "0002_graph_edges"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.AlterField(model_name="event", name="dedupe", field=models.CharField(max_length=64)),
                migrations.AlterField(model_name="node", name="key", field=models.CharField(max_length=64)),
                migrations.AddConstraint(
                    model_name="event",
                    constraint=models.UniqueConstraint(fields=("dedupe",), name="lineage_event_dedupe_once"),
                ),
                migrations.AddConstraint(
                    model_name="node",
                    constraint=models.UniqueConstraint(fields=("key",), name="lineage_node_key_once"),
                ),
            ],
        ),
    ]
