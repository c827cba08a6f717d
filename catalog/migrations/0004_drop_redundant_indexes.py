# Drops indexes that duplicate composite ones or serve no query (cheaper inserts at 250k entities).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('catalog', '0003_list_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='relation',
            name='relation_target',
        ),
        migrations.AlterField(
            model_name='entity',
            name='owner_team',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='entities', to='accounts.team'),
        ),
        migrations.AlterField(
            model_name='entitytag',
            name='entity',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='tag_rows', to='catalog.entity'),
        ),
        migrations.AlterField(
            model_name='relation',
            name='origin',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.entity'),
        ),
    ]
