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


# -- the graph: client.lineage.graph/columns/impact and `plinth lineage graph|impact` -----------------


def test_client_reads_the_graph_columns_and_impact_sync_and_async(portal):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from plinth_sdk import AsyncClient, Client
    from plinth_sdk.errors import NotFoundError, ValidationError

    with Client(portal.url, portal.token("alice")) as client:
        around = client.lineage.graph("entity:model:default:fraud-detector", depth=1, direction="upstream")
        assert around["root"] == "entity:model:default:fraud-detector"
        # The training set is declared by its openlineage.io/dataset annotation: it is drawn as that node.
        assert "dataset:s3://ml-data:fraud/transactions/2025" in {n["id"] for n in around["graph"]}
        impact = client.lineage.impact("entity:dataset:default:card-transactions-2025")
        assert impact["critical"][0]["id"] == "entity:model:default:fraud-detector"
        with pytest.raises(NotFoundError):
            client.lineage.columns("dataset:s3://nowhere:x", column="id")
        with pytest.raises(ValidationError) as bad:
            client.lineage.graph("table:x")
        assert "nodeId" in str(bad.value)

    async def main():
        async with AsyncClient(portal.url, portal.token("alice")) as client:
            return await client.lineage.impact("entity:dataset:default:card-transactions-2025", depth=1)

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, main()).result(timeout=60)["total"] >= 1


def test_cli_graph_tree_and_impact_table(portal, plinth):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    tree = plinth("lineage", "graph", "entity:dataset:default:card-transactions-2025", "--depth", "3",
                  "--direction", "downstream", env=env)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0] == "# downstream" and "Card transactions 2025" in lines[1]
    assert any(line.startswith("  model: Fraud detector") for line in lines), tree.stdout
    as_json = plinth("lineage", "graph", "entity:dataset:default:card-transactions-2025", "--json", env=env)
    assert json.loads(as_json.stdout)["root"] == "dataset:s3://ml-data:fraud/transactions/2025"
    impact = plinth("lineage", "impact", "entity:dataset:default:card-transactions-2025", env=env)
    assert impact.returncode == 0, impact.stderr
    first = impact.stdout.splitlines()[1]
    assert "model · fraud-ml" in first and "production model" in first, impact.stdout
    one_line_error(plinth("lineage", "impact", "entity:model:default:nope", env=env), 4)
    one_line_error(plinth("lineage", "graph", "table:x", env=env), 2, "nodeId")


# -- one job's runs: client.lineage.runs and `plinth lineage runs` --------------------------------------


def _runs_event(run_id: str, job: str, day: int) -> dict:
    return dict(event(run_id, job), eventTime=f"2026-11-{day:02d}T10:00:00Z")


def test_client_and_cli_list_every_run_of_a_job(portal, plinth, spec):
    from plinth_sdk import Client
    from plinth_sdk.errors import NotFoundError, ValidationError

    job = f"runs-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(5)]
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    with Client(portal.url, portal.token("alice")) as client:
        assert client.lineage.send([_runs_event(r, job, day) for day, r in enumerate(ids, start=1)])["stored"] == 5
        listed = list(client.lineage.runs(f"job:ci:{job}", page_size=2))  # three pages
        assert [r["runId"] for r in listed] == ids[::-1], "every run, newest first, across pages"
        assert [r["runId"] for r in client.lineage.runs(f"job:ci:{job}", limit=3)] == ids[:1:-1]
        with pytest.raises(NotFoundError):
            list(client.lineage.runs("job:ci:no-such-job"))
        with pytest.raises(ValidationError) as bad:
            list(client.lineage.runs("dataset:s3://lake:features/churn"))
        assert "nodeId" in str(bad.value)

    shown = plinth("lineage", "runs", f"job:ci:{job}", "--limit", "2", env=env)
    assert shown.returncode == 0, shown.stderr
    assert ids[4] in shown.stdout and ids[3] in shown.stdout and ids[2] not in shown.stdout
    as_json = plinth("-o", "json", "lineage", "runs", f"job:ci:{job}", "--limit", "0", env=env)
    assert [r["runId"] for r in json.loads(as_json.stdout)] == ids[::-1]
    one_line_error(plinth("lineage", "runs", "job:ci:no-such-job", env=env), 4)
