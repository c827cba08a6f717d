# Scorecard results, level history, daily rollups and manual check answers (docs/operations.md).

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
            name='DailyRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('scorecard', models.CharField(max_length=63)),
                ('level', models.CharField(blank=True, max_length=40)),
                ('visibility', models.CharField(default=portal.accounts.permissions.Visibility['INTERNAL'], max_length=10)),
                ('count', models.PositiveIntegerField(default=0)),
                ('owner_team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.team')),
            ],
            options={
                'indexes': [models.Index(fields=['scorecard', 'day'], name='rollup_scorecard_day')],
            },
        ),
        migrations.CreateModel(
            name='LevelChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scorecard', models.CharField(max_length=63)),
                ('from_level', models.CharField(blank=True, max_length=40)),
                ('to_level', models.CharField(blank=True, max_length=40)),
                ('at', models.DateTimeField()),
                ('entity', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.entity')),
            ],
            options={
                'ordering': ['-at', '-id'],
                'indexes': [models.Index(fields=['entity', 'scorecard', 'at'], name='levelchange_entity')],
            },
        ),
        migrations.CreateModel(
            name='ManualResult',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scorecard', models.CharField(max_length=63)),
                ('check_id', models.CharField(max_length=63)),
                ('passed', models.BooleanField()),
                ('justification', models.TextField()),
                ('expires_at', models.DateTimeField()),
                ('set_at', models.DateTimeField()),
                ('entity', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.entity')),
                ('set_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('entity', 'scorecard', 'check_id'), name='one_manual_result_per_check')],
            },
        ),
        migrations.CreateModel(
            name='Result',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scorecard', models.CharField(max_length=63)),
                ('level', models.CharField(blank=True, max_length=40)),
                ('rank', models.PositiveSmallIntegerField(default=0)),
                ('passed', models.PositiveSmallIntegerField(default=0)),
                ('total', models.PositiveSmallIntegerField(default=0)),
                ('checks', models.JSONField(default=dict)),
                ('visibility', models.CharField(default=portal.accounts.permissions.Visibility['INTERNAL'], max_length=10)),
                ('definition_version', models.PositiveIntegerField(default=1)),
                ('digest', models.CharField(blank=True, max_length=32)),
                ('evaluated_at', models.DateTimeField()),
                ('level_since', models.DateTimeField()),
                ('entity', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.entity')),
                ('owner_team', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.team')),
            ],
            options={
                'indexes': [models.Index(fields=['scorecard', 'owner_team', 'rank'], name='scorecard_team_rank'), models.Index(fields=['scorecard', 'id'], name='scorecard_result_page')],
                'constraints': [models.UniqueConstraint(fields=('entity', 'scorecard'), name='one_result_per_scorecard')],
            },
        ),
    ]
