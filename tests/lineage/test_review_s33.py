"""Defects found in review (session 33), each pinned: another team's private job on a public dataset's
page, column-lineage sources and lone surrogates that got past the checks, the column walk's query
count and its `hidden` count, IPv6 namespaces, the full page's nodeId, and a runId reused by another job."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services as catalog_services
from catalog.models import Entity
from portal.accounts.models import Role
from portal.lineage import events
from portal.lineage.models import ColumnEdge, Edge, Event, Node, Run
from tests.factories import MembershipFactory, TeamFactory, UserFactory, write_files
from tests.lineage.conftest import bearer, facet, post, run_event
from tests.lineage.test_graph_columns import _write

pytestmark = pytest.mark.django_db
PG = "postgres://db:5432"
SECRET_ERROR = "KeyError: 'ssn' in secret_scoring_job step 3"


def _register(tmp_path, callbacks, name: str, text: str) -> None:
    folder = tmp_path / name
    folder.mkdir()
    write_files(folder, {"catalog-info.yaml": text})
    with callbacks(execute=True):
        catalog_services.location_register(target=str(folder / "catalog-info.yaml"), actor=None, file_roots=None)


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- 1. another team's private job ----------------------------------------------------------------


@pytest.fixture
def private_writer(api, tmp_path, django_capture_on_commit_callbacks):
    """risk's private pipeline `airflow/secret_scoring_job` failed writing `shared.scores`, an internal
    dataset; a public job of data-eng wrote it earlier and succeeded."""
    risk = TeamFactory(name="risk")
    _register(tmp_path, django_capture_on_commit_callbacks, "secret", (
        "apiVersion: plinth.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: secret-scoring\n  annotations:\n"
        "    openlineage.io/job: airflow/secret_scoring_job\n    plinth.dev/visibility: private\n"
        "spec:\n  type: training\n  owner: risk\n"))
    assert post(api, run_event("COMPLETE", job=("airflow", "public_loader"), outputs=[(PG, "shared.scores")],
                               when="2026-11-30T09:00:00Z")).status_code == 201
    rosa = UserFactory(username="rosa")
    MembershipFactory(user=rosa, team=risk, role=Role.MEMBER)
    failed = post(bearer(rosa), run_event("FAIL", job=("airflow", "secret_scoring_job"), outputs=[(PG, "shared.scores")],
                                          run_facets={"errorMessage": facet(message=SECRET_ERROR,
                                                                            programmingLanguage="python")}))
    assert failed.status_code == 201
    return {"insider": rosa, "dataset": Entity.objects.get(kind_key="dataset")}


def _panel(client, entity) -> str:
    page = client.get(entity.get_absolute_url())
    assert page.status_code == 200
    found = re.search(r'aria-labelledby="lineage-runs-title".*?</section>', page.content.decode(), re.S)
    return found.group(0) if found else ""


def test_a_dataset_page_leaves_out_the_runs_of_a_private_job_of_another_team(member, private_writer):
    """dora (data-eng) sees the dataset and the public job's run, never the private job's name, state or error."""
    page = _session(member).get(private_writer["dataset"].get_absolute_url()).content.decode()
    assert "secret_scoring_job" not in page and "KeyError" not in page
    panel = _panel(_session(member), private_writer["dataset"])
    assert "Complete" in panel and "Failed" not in panel and "public_loader" in panel
    insider = _panel(_session(private_writer["insider"]), private_writer["dataset"])
    assert "secret_scoring_job" in insider and "KeyError" in insider, "the owning team still sees its runs"
    admin = UserFactory(username="root", is_superuser=True)
    assert "secret_scoring_job" in _panel(_session(admin), private_writer["dataset"]), "a platform admin sees all"


def test_a_datasets_last_run_comes_only_from_writers_the_reader_may_see(api, member, private_writer):
    node_id = f"dataset:{PG}:shared.scores"

    def last_run(client):
        body = client.get("/api/v1/lineage", {"nodeId": node_id, "depth": 0}).json()
        return next(n for n in body["graph"] if n["id"] == node_id)["data"]["lastRun"]

    assert last_run(api)["state"] == "COMPLETE", "the private job's newer FAIL is not the reader's last run"
    assert last_run(bearer(private_writer["insider"]))["state"] == "FAIL"


def test_the_dataset_panel_costs_the_same_queries_with_more_writers(api, member, private_writer):
    client = _session(member)

    def count() -> int:
        client.get(private_writer["dataset"].get_absolute_url())
        with CaptureQueriesContext(connection) as captured:
            client.get(private_writer["dataset"].get_absolute_url())
        return len(captured)

    before = count()
    for index in range(3):
        post(api, run_event("COMPLETE", job=("airflow", f"more_{index}"), outputs=[(PG, "shared.scores")]))
    assert count() == before


# -- 2. columnLineage sources are names like any other --------------------------------------------


@pytest.mark.parametrize("namespace,name,key", [
    ("", "x", "namespace"), ("pg", "", "name"), ("pg", "a\nb", "name"), ("pg", "y" * 1200, "name"),
    ("pg\x85", "x", "namespace"),
])
def test_column_lineage_sources_are_checked_like_dataset_names(api, namespace, name, key):
    lineage = facet(fields={"total": {"inputFields": [{"namespace": PG, "name": "orders", "field": "a"},
                                                      {"namespace": namespace, "name": name, "field": "c"}]}})
    response = post(api, run_event("COMPLETE", inputs=[(PG, "orders")],
                                   outputs=[{"namespace": PG, "name": "out", "facets": {"columnLineage": lineage}}]))
    assert response.status_code == 400, response.content
    path = f"outputs[0].facets.columnLineage.fields.total.inputFields[1].{key}"
    assert list(response.json()["error"]["details"]) == [path]
    assert not Node.objects.exists() and not Event.objects.exists() and not ColumnEdge.objects.exists()


# -- 3. lone surrogates ---------------------------------------------------------------------------


def _with(event: dict, marker: str, escaped: str) -> bytes:
    return json.dumps(event).replace(marker, escaped).encode()


@pytest.mark.parametrize("event,marker,path", [
    (run_event(job=("airflow", "JOB")), "JOB", "job.name"),
    (run_event(inputs=[("pg", "IN")]), "IN", "inputs[0].name"),
    (run_event(inputs=[("NS", "t")]), "NS", "inputs[0].namespace"),
    (run_event(run_facets={"custom": facet(v="VALUE")}), "VALUE", "run.facets.custom.v"),
    (run_event(run_facets={"custom": facet(KEY=1)}), "KEY", "run.facets.custom.a\\udfffb"),
])
def test_a_lone_surrogate_anywhere_is_a_400_naming_where(api, event, marker, path):
    escaped = "a\\udfffb" if marker == "KEY" else "a\\ud800b"
    response = post(api, _with(event, marker, escaped))
    assert response.status_code == 400, response.content
    details = json.loads(response.content)["error"]["details"]
    assert list(details) == [path] and "surrogate" in details[path][0]
    assert not Node.objects.exists() and not Event.objects.exists()


def test_a_surrogate_pair_is_a_character_like_any_other(api):
    response = post(api, _with(run_event(job=("airflow", "JOB"), run_facets={"custom": facet(v="V")}),
                               "JOB", "etl \\ud83d\\ude00"))
    assert response.status_code == 201, response.content
    assert Node.objects.get(type="job").name == "etl \U0001f600"


def test_a_surrogate_in_a_dataset_event_is_a_400(api):
    event = {"eventTime": "2026-11-30T10:00:00Z", "producer": "https://example.org/p",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
             "dataset": {"namespace": "ns", "name": "NAME"}}
    response = post(api, _with(event, "NAME", "\\ud800"))
    assert response.status_code == 400 and "dataset.name" in response.json()["error"]["details"]


def test_a_surrogate_encoded_in_the_raw_bytes_is_a_400(api):
    """json reads UTF-8 with surrogatepass: the bytes of \\ud800 without any escape in the body."""
    response = post(api, json.dumps(run_event(job=("airflow", "JOB"))).encode().replace(b"JOB", b"a\xed\xa0\x80b"))
    assert response.status_code == 400 and list(response.json()["error"]["details"]) == ["job.name"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_body_orjson_cannot_read_is_walked_for_credentials(api, encoding):
    """json reads UTF-16 and UTF-32 bodies, where no search of the raw bytes finds "://…@": walked."""
    event = run_event(inputs=[("postgresql://etl:s3cret@db:5432", "t")],
                      run_facets={"custom": facet(url="https://bot:s3cret@git.example.org/r.git")})
    response = post(api, json.dumps(event).encode(encoding))
    assert response.status_code == 201, response.content
    assert "s3cret" not in json.dumps(Event.objects.get().payload)


# -- 4 and 5. the column walk ---------------------------------------------------------------------


def _wide(api, target: str, columns: int) -> None:
    lineage = facet(fields={f"f{i}": {"inputFields": [{"namespace": PG, "name": "src", "field": f"c{i}"}]}
                            for i in range(columns)})
    response = post(api, run_event("COMPLETE", job=("airflow", f"load_{target}"), inputs=[(PG, "src")],
                                   outputs=[{"namespace": PG, "name": target, "facets": {"columnLineage": lineage}}]))
    assert response.status_code == 201, response.content


def test_every_column_of_a_dataset_takes_the_queries_of_one(api):
    _wide(api, "narrow", 1)
    _wide(api, "wide", 150)

    def count(target: str) -> tuple[int, int]:
        params = {"nodeId": f"dataset:{PG}:{target}"}
        api.get("/api/v1/lineage/columns", params)
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/api/v1/lineage/columns", params)
        assert response.status_code == 200
        return len(captured), len(response.json()["graph"])

    narrow, wide = count("narrow"), count("wide")
    assert (narrow[1], wide[1]) == (2, 300)
    assert wide[0] == narrow[0]


def test_the_column_walk_is_cut_at_the_row_cap_and_says_so(api, monkeypatch):
    from portal.lineage import graph

    _wide(api, "wide", 30)
    monkeypatch.setattr(graph, "MAX_ROWS", 10)
    body = api.get("/api/v1/lineage/columns", {"nodeId": f"dataset:{PG}:wide"}).json()
    assert body["truncated"] is True and len(body["graph"]) <= 30 + 10
    monkeypatch.setattr(graph, "MAX_ROWS", 20_000)
    body = api.get("/api/v1/lineage/columns", {"nodeId": f"dataset:{PG}:wide"}).json()
    assert body["truncated"] is False and len(body["graph"]) == 60


def test_hidden_columns_count_only_those_next_to_what_is_shown(api, tmp_path, django_capture_on_commit_callbacks):
    """t0.c → t1.c → … → t4.c with t1…t4 private to risk: one hidden field (t1.c), as the graph says one
    hidden node; the length of the private chain behind it is not told."""
    for index in range(1, 5):
        _write(api, f"s{index}", [(f"t{index - 1}", "c")], f"t{index}", "c")
    TeamFactory(name="risk")
    for index in range(1, 5):
        _register(tmp_path, django_capture_on_commit_callbacks, f"p{index}", (
            f"apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: private-{index}\n  annotations:\n"
            f"    openlineage.io/dataset: {PG}/t{index}\n    plinth.dev/visibility: private\nspec:\n  owner: risk\n"))
    body = api.get("/api/v1/lineage/columns", {"nodeId": f"dataset:{PG}:t0", "column": "c",
                                               "direction": "downstream", "depth": 10}).json()
    assert [n["id"] for n in body["graph"]] == [f"datasetField:{PG}:t0:c"]
    assert body["hidden"] == 1


# -- 6. IPv6 hosts --------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace,expected", [
    ("postgres://[2001:db8::1]:5432", "postgres://[2001:db8::1]:5432"),
    ("postgres://[2001:db8::1:5432]", "postgres://[2001:db8::1:5432]"),
    ("postgresql://u:pw@[2001:DB8::1]:5432/", "postgres://[2001:db8::1]:5432"),
    ("postgres://[::1]", "postgres://[::1]"),
    ("postgres://db:5432", "postgres://db:5432"),
])
def test_an_ipv6_host_keeps_its_brackets(namespace, expected):
    assert events.normalise_dataset(events.strip_credentials(namespace), "t") == (expected, "t")


def test_two_ipv6_addresses_that_differ_by_a_port_are_two_datasets(api):
    response = post(api, run_event("COMPLETE", outputs=[("postgres://[2001:db8::1]:5432", "t"),
                                                        ("postgres://[2001:db8::1:5432]", "t")]))
    assert response.status_code == 201
    assert Node.objects.filter(type="dataset").count() == 2


# -- 7. the full page takes the id as sent --------------------------------------------------------


def test_the_full_page_keeps_spaces_that_are_part_of_a_name(api, member):
    assert post(api, run_event("COMPLETE", job=("airflow", "j"), outputs=[(PG, "t1 ")])).status_code == 201
    client = _session(member)
    assert client.get("/lineage/", {"nodeId": f"dataset:{PG}:t1 "}).status_code == 200
    assert post(api, run_event("COMPLETE", job=("airflow", "j2"), outputs=[(PG, "t1")])).status_code == 201
    page = client.get("/lineage/", {"nodeId": f"dataset:{PG}:t1 "})
    assert page.status_code == 200 and f'data-root="dataset:{PG}:t1 "' in page.content.decode()
    assert client.get("/lineage/", {"nodeId": "   "}).status_code == 400


# -- 8. a runId belongs to one job ----------------------------------------------------------------


def test_a_run_id_reused_by_another_job_is_a_409_and_changes_nothing(api):
    run_id = uuid.uuid4()
    assert post(api, run_event("START", run_id=run_id, job=("airflow", "A"), outputs=[(PG, "a")])).status_code == 201
    stored = (Run.objects.count(), Event.objects.count(), Node.objects.count(), Edge.objects.count())
    response = post(api, run_event("FAIL", run_id=run_id, when="2026-11-30T10:06:00Z", job=("other", "C"),
                                   outputs=[(PG, "c")]))
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert list(error["details"]) == ["run.runId"]
    assert str(run_id) in error["message"] and "airflow/A" in error["message"] and "other/C" in error["message"]
    assert (Run.objects.count(), Event.objects.count(), Node.objects.count(), Edge.objects.count()) == stored
    assert Run.objects.get().state == "START"


def test_a_run_id_of_two_jobs_in_one_batch_is_a_409_naming_the_index(api):
    run_id = uuid.uuid4()
    response = post(api, [run_event("START", run_id=run_id, job=("airflow", "A")),
                          run_event("COMPLETE", run_id=run_id, when="2026-11-30T10:05:00Z", job=("airflow", "B"))])
    assert response.status_code == 409, response.content
    assert list(response.json()["error"]["details"]) == ["[1].run.runId"]
    assert not Run.objects.exists() and not Event.objects.exists() and not Node.objects.exists()


def test_a_run_id_of_a_private_job_is_not_named_to_others(api, member, private_writer):
    run_id = Run.objects.get(job__name="secret_scoring_job").run_id
    response = post(api, run_event("COMPLETE", run_id=run_id, job=("airflow", "mine")))
    assert response.status_code == 409
    assert "secret_scoring_job" not in response.content.decode()
