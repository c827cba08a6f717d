from django.db import migrations

# The kinds search.index.UNTYPED_KINDS names, as of this migration (a migration does not follow later edits).
UNTYPED_KINDS = ("doc",)


def clear_types(apps, schema_editor):
    """Docs pages indexed before they became untyped keep their entity's kind ("component") as type until
    re-indexed, and the Type facet counts them. The facet and `type:` filters read only this column (the
    FTS tables and PostgreSQL's tsvectors hold no type), on both engines; the index-version triggers see
    the update, so cached results are dropped too."""
    SearchDocument = apps.get_model("search", "SearchDocument")
    SearchDocument.objects.filter(kind__in=UNTYPED_KINDS).exclude(type="").update(type="")


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0010_document_indexed_at"),
    ]

    operations = [
        migrations.RunPython(clear_types, migrations.RunPython.noop),
    ]
