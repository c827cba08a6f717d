# The document FK index duplicated searchtag_doc: one index fewer per tag row written.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('search', '0004_index_version_fts_prefixes'),
    ]

    # Only the index goes: altering the field would make SQLite rebuild the table and lose the
    # index-version triggers of 0004.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="searchdocumenttag",
                    name="document",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="tag_rows", to="search.searchdocument"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS search_searchdocumenttag_document_id_de5d7046",
                    reverse_sql="CREATE INDEX search_searchdocumenttag_document_id_de5d7046 "
                                "ON search_searchdocumenttag (document_id)",
                ),
            ],
        ),
    ]
