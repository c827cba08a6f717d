"""On PostgreSQL, the raw Event table becomes a table partitioned by month (portal/insights/partitions.py).
Other databases: nothing to do."""

from django.db import migrations

from portal.insights.partitions import partition_table, unpartition_table


class Migration(migrations.Migration):
    atomic = True
    dependencies = [("insights", "0002_core_capture")]

    operations = [migrations.RunPython(partition_table, unpartition_table, elidable=False)]
