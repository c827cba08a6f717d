"""`plinth lineage send FILE…` against the live server: NDJSON and arrays from files or stdin, one atomic
batch; a file that is not JSON and an event the server refuses each end in a clear error, nothing stored."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from portal.lineage.models import Run

from .test_cli import one_line_error

pytestmark = pytest.mark.django_db(transaction=True)


def event(run_id: str, job: str = "train") -> dict:
    return {"eventType": "START", "eventTime": "2026-11-30T10:00:00Z", "producer": "https://example.org/ci",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run_id}, "job": {"namespace": "ci", "name": job},
            "inputs": [{"namespace": "s3://lake", "name": "features/churn"}]}


@pytest.fixture
def spec():
    if not Path(settings.PLINTH_OPENLINEAGE_SPEC_DIR, "OpenLineage.json").is_file():
        pytest.skip("OpenLineage spec not found (../shared/compat/openlineage/spec)")


def test_send_ndjson_and_stdin_as_one_batch(portal, plinth, spec, tmp_path):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    (tmp_path / "events.ndjson").write_text(json.dumps(event(a)) + "\n\n" + json.dumps(event(b, "score")) + "\n")
    sent = plinth("-o", "json", "lineage", "send", "events.ndjson", "-", env=env, input=json.dumps([event(c)]))
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"received": 3, "stored": 3, "duplicates": 0, "runs": [a, b, c]}
    again = plinth("lineage", "send", "events.ndjson", env=env)
    assert again.returncode == 0 and "stored      0" in again.stdout and "sent before" in again.stderr
    assert Run.objects.filter(run_id__in=[a, b, c]).count() == 3


def test_bad_files_and_refused_events_change_nothing(portal, plinth, spec, tmp_path):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    (tmp_path / "broken.ndjson").write_text(json.dumps(event(str(uuid.uuid4()))) + "\n{not json\n")
    broken = plinth("lineage", "send", "broken.ndjson", env=env)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "broken.ndjson: line 2: not JSON" in broken.stderr
    (tmp_path / "scalar.json").write_text("[1]")
    scalar = plinth("lineage", "send", "scalar.json", env=env)
    assert scalar.returncode == 2 and "scalar.json: event 0 is not a JSON object" in scalar.stderr
    good = str(uuid.uuid4())
    (tmp_path / "batch.json").write_text(json.dumps([event(good), event("not-a-uuid")]))
    one_line_error(plinth("lineage", "send", "batch.json", env=env), 2, "[1].run.runId")
    assert not Run.objects.filter(run_id=good).exists()  # the batch is atomic
