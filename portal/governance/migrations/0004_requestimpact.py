import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("governance", "0003_feedback_notification_url"),
    ]

    operations = [
        migrations.CreateModel(
            name="RequestImpact",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("root", models.CharField(blank=True, max_length=500)),
                ("hops", models.PositiveSmallIntegerField(default=10)),
                ("total", models.PositiveIntegerField(default=0)),
                ("critical", models.PositiveIntegerField(default=0)),
                ("items", models.JSONField(default=list)),
                ("error", models.TextField(blank=True)),
                ("computed_at", models.DateTimeField(auto_now_add=True)),
                (
                    "request",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="impact",
                        to="governance.approvalrequest",
                    ),
                ),
            ],
        ),
    ]
