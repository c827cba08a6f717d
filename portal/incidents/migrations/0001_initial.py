# Incidents, their entity links, Alertmanager alerts and timelines (docs/operations.md, "Incidents").

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import portal.accounts.permissions


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0001_initial'),
        ('catalog', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Incident',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('title', models.CharField(max_length=200)),
                ('summary', models.TextField(blank=True)),
                ('severity', models.CharField(choices=[('sev1', 'SEV1 — critical'), ('sev2', 'SEV2 — major'), ('sev3', 'SEV3 — minor'), ('sev4', 'SEV4 — low')], max_length=4)),
                ('status', models.CharField(choices=[('open', 'Open'), ('acknowledged', 'Acknowledged'), ('resolved', 'Resolved')], default='open', max_length=12)),
                ('source', models.CharField(choices=[('manual', 'Opened by hand'), ('slo', 'SLO burn rate'), ('alertmanager', 'Alertmanager')], default='manual', max_length=12)),
                ('dedup_key', models.CharField(blank=True, max_length=200)),
                ('group_key', models.TextField(blank=True)),
                ('external_url', models.CharField(blank=True, max_length=500)),
                ('visibility', models.CharField(default=portal.accounts.permissions.Visibility['INTERNAL'], max_length=10)),
                ('opened_at', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('opened_by_label', models.CharField(max_length=150)),
                ('postmortem_path', models.CharField(blank=True, max_length=500)),
                ('postmortem_title', models.CharField(blank=True, max_length=300)),
                ('version', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('opened_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('owner_team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.team')),
                ('postmortem_entity', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='catalog.entity')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='IncidentAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(max_length=64)),
                ('name', models.CharField(blank=True, max_length=200)),
                ('status', models.CharField(choices=[('firing', 'Firing'), ('resolved', 'Resolved')], max_length=8)),
                ('severity', models.CharField(choices=[('sev1', 'SEV1 — critical'), ('sev2', 'SEV2 — major'), ('sev3', 'SEV3 — minor'), ('sev4', 'SEV4 — low')], max_length=4)),
                ('labels', models.JSONField(default=dict)),
                ('annotations', models.JSONField(default=dict)),
                ('entity_ref', models.CharField(blank=True, max_length=200)),
                ('starts_at', models.DateTimeField()),
                ('ends_at', models.DateTimeField(blank=True, null=True)),
                ('generator_url', models.CharField(blank=True, max_length=1000)),
                ('first_seen_at', models.DateTimeField()),
                ('last_seen_at', models.DateTimeField()),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='incidents.incident')),
            ],
            options={
                'ordering': ['starts_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='IncidentEntity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0)),
                ('entity', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.entity')),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='links', to='incidents.incident')),
            ],
            options={
                'ordering': ['position', 'id'],
            },
        ),
        migrations.CreateModel(
            name='TimelineEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('kind', models.CharField(choices=[('opened', 'Opened'), ('acknowledged', 'Acknowledged'), ('resolved', 'Resolved'), ('reopened', 'Reopened'), ('note', 'Note'), ('alert-firing', 'Alert firing'), ('alert-resolved', 'Alert resolved'), ('severity', 'Severity changed'), ('linked', 'Entity linked'), ('unlinked', 'Not linked'), ('postmortem', 'Postmortem')], max_length=16)),
                ('actor_label', models.CharField(max_length=150)),
                ('text', models.TextField(blank=True)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='timeline', to='incidents.incident')),
            ],
            options={
                'ordering': ['at', 'id'],
            },
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['status', 'severity', 'opened_at'], name='incident_status_sev'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['owner_team', 'status'], name='incident_team_status'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['created_at', 'id'], name='incident_created'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['dedup_key', 'created_at'], name='incident_dedup_key'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['resolved_at'], name='incident_resolved_at'),
        ),
        migrations.AddConstraint(
            model_name='incident',
            constraint=models.UniqueConstraint(condition=models.Q(models.Q(('dedup_key', ''), _negated=True), models.Q(('status', 'resolved'), _negated=True)), fields=('dedup_key',), name='one_unresolved_incident_per_key'),
        ),
        migrations.AddConstraint(
            model_name='incidentalert',
            constraint=models.UniqueConstraint(fields=('incident', 'fingerprint'), name='one_alert_per_fingerprint'),
        ),
        migrations.AddIndex(
            model_name='incidententity',
            index=models.Index(fields=['entity', 'incident'], name='incident_link_entity'),
        ),
        migrations.AddConstraint(
            model_name='incidententity',
            constraint=models.UniqueConstraint(fields=('incident', 'entity'), name='one_link_per_entity'),
        ),
        migrations.AddIndex(
            model_name='timelineentry',
            index=models.Index(fields=['incident', 'at'], name='incident_timeline'),
        ),
    ]
