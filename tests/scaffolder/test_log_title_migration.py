"""scaffolder 0006: the executor's first log line named the template ("Run of <title> started."), which
is stored and may be read later by someone not allowed to see the template. Runs made before keep that
line without the title; other lines, and a line that only looks alike, are left as they were."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("scaffolder", "0005_run_cancel"), ("scaffolder", "0006_run_log_without_template_title")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def _run(apps, title: str, ref: str, lines: list[str]):
    Run, RunLog = apps.get_model("scaffolder", "Run"), apps.get_model("scaffolder", "RunLog")
    run = Run.objects.create(uid=uuid.uuid4(), template_ref=ref, template_title=title, template_source="/t/template.yaml", template={},
                             parameters={}, status="succeeded")
    return [RunLog.objects.create(run=run, message=line).pk for line in lines]


@pytest.mark.django_db(transaction=True)
def test_old_run_logs_lose_the_template_title():
    apps = _migrate(BEFORE)
    try:
        titled = _run(apps, "Secret fraud pipeline", "template:default/secret-fraud",
                      ["Run of Secret fraud pipeline started.", "Step fetch: done.", "Run of Secret fraud pipeline started."])
        dry = _run(apps, "Secret fraud pipeline", "template:default/secret-dry",
                   ["Run of Secret fraud pipeline (dry run) started."])
        untitled = _run(apps, "", "template:default/untitled", ["Run of template:default/untitled started."])
        other = _run(apps, "Mine", "template:default/mine", ["Run of Someone else started."])

        apps = _migrate(AFTER)
        RunLog = apps.get_model("scaffolder", "RunLog")
        text = dict(RunLog.objects.values_list("pk", "message"))
        assert [text[pk] for pk in titled] == ["Run started.", "Step fetch: done.", "Run started."]
        assert [text[pk] for pk in dry] == ["Run started (dry run)."]
        assert [text[pk] for pk in untitled] == ["Run started."]
        assert [text[pk] for pk in other] == ["Run of Someone else started."], "a line naming another title is a step's own"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
