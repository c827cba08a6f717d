"""POST /api/v1/lineage: real producer events in, runs, edges and observed catalog entities out; idempotency,
run-state merging, credentials stripping, ownership and permissions."""

from __future__ import annotations

import copy
import json
import re
import uuid

import pytest
from django.test import Client

from catalog import services as catalog_services
from catalog.models import Entity
from portal.accounts.models import Role
from portal.core.models_audit import AuditEvent
from portal.lineage import services
from portal.lineage.models import ColumnEdge, Edge, Event, Node, Run
from tests.factories import MembershipFactory, TeamFactory, UserFactory, write_files
from tests.lineage.conftest import bearer, facet, post, run_event

pytestmark = pytest.mark.django_db


def _fill(value, state):
    """The dbt recordings mark ignored values `{{ any(result) }}` and omit facets' _producer/_schemaURL:
    give each run a real UUID and each facet its base fields, as the real integration sends them."""
    if isinstance(value, dict):
        return {k: _fill(v, state) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, state) for v in value]
    if isinstance(value, str) and "any(result)" in value:
        return state.setdefault("uuid", str(uuid.uuid4()))
    return value


def _with_base_fields(event: dict) -> dict:
    event.setdefault("producer", "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/dbt")
    event.setdefault("schemaURL", "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")
    holders = [event.get("run", {}), event.get("job", {})] + event.get("inputs", []) + event.get("outputs", [])
    for holder in holders:
        for key in ("facets", "inputFacets", "outputFacets"):
            for facet_value in (holder.get(key) or {}).values():
                if isinstance(facet_value, dict):
                    facet_value.setdefault("_producer", event["producer"])
                    facet_value.setdefault("_schemaURL", "https://openlineage.io/spec/facets/1-0-0/Facet.json")
    return event


def test_the_python_clients_full_example_event_is_stored(api, compat):
    event = json.loads((compat / "client/python/tests/example_full_event.json").read_text())
    response = post(api, event)
    assert response.status_code == 201, response.json()
    assert response.json()["stored"] == 1
    run = Run.objects.get(run_id=event["run"]["runId"])
    assert run.state == event["eventType"]
    job = Node.objects.get(type="job", namespace=event["job"]["namespace"], name=event["job"]["name"])
    assert run.job == job and job.last_run == run
    assert Edge.objects.filter(target=job).count() == len(event["inputs"])
    assert Edge.objects.filter(source=job).count() == len(event["outputs"])
    assert job.entity.kind == "Pipeline" and job.entity.lifecycle == "observed"


def test_dbt_runs_recorded_from_the_real_integration_build_a_graph(api, compat):
    recorded = json.loads((compat / "integration/common/tests/dbt/structured_logs/postgres/run/results/"
                                     "successful_run_ol_events.json").read_text())
    state: dict = {}
    events = []
    for raw in recorded:
        state.pop("uuid", None)
        event = _with_base_fields(_fill(raw, state))
        events.append(event)
    response = post(api, events)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stored"] >= 1 and body["stored"] + body["duplicates"] == len(events)
    assert Run.objects.count() >= 1
    assert Edge.objects.exists()
    outputs = {(o["namespace"], o["name"]) for e in events for o in e.get("outputs", [])}
    for namespace, name in outputs:
        node = Node.objects.get(type="dataset", namespace=namespace, name=name)
        assert node.entity is not None and node.entity.kind == "Dataset"
        assert Edge.objects.filter(target=node, source__type="job").exists()
    # The observed datasets are in the catalog like any entity: listed by kind through the API.
    listed = api.get("/api/v1/entities?filter=kind=dataset&fields=metadata.name").json()
    assert listed["totalItems"] >= len(outputs)


def test_resending_is_idempotent_and_a_late_start_does_not_undo_complete(api):
    run_id = uuid.uuid4()
    complete = run_event("COMPLETE", run_id=run_id, when="2026-11-30T10:05:00Z", inputs=[("pg", "a")],
                         outputs=[("pg", "b")])
    start = run_event("START", run_id=run_id, when="2026-11-30T10:00:00+00:00")
    assert post(api, complete).json()["stored"] == 1
    assert post(api, start).json()["stored"] == 1
    again = post(api, [complete, dict(start, eventTime="2026-11-30T10:00:00Z")]).json()
    assert again == {"received": 2, "stored": 0, "duplicates": 2, "runs": []}
    run = Run.objects.get(run_id=run_id)
    assert run.state == "COMPLETE" and run.duration_seconds == 300
    assert Event.objects.filter(run=run).count() == 2


@pytest.mark.parametrize("first_stored", [False, True])
def test_a_batch_writes_the_same_whether_or_not_some_of_it_was_stored_before(api, first_stored):
    """The writer's two paths (services._Batch): the plan made before the write turn, used when nothing of
    the batch was stored, and a plan made under the lock for the rest, with runs already stored folded
    into their rows. A column source named nowhere else becomes a node with an observed entity."""
    pg = "postgres://db:5432"
    first, second = uuid.uuid4(), uuid.uuid4()
    start = run_event("START", run_id=first, when="2026-11-30T10:00:00Z", job=("etl", "a"), inputs=[(pg, "x.s.in")],
                      outputs=[(pg, "x.s.mid")])
    complete = run_event("COMPLETE", run_id=first, when="2026-11-30T10:01:30Z", job=("etl", "a"),
                         outputs=[(pg, "x.s.mid")])
    columns = facet(fields={"score": {"inputFields": [{"namespace": pg, "name": "x.s.only_in_columns", "field": "v"}]}})
    other = run_event("COMPLETE", run_id=second, when="2026-11-30T10:02:00Z", job=("etl", "b"),
                      inputs=[(pg, "x.s.mid")], outputs=[{"namespace": pg, "name": "x.s.out",
                                                          "facets": {"columnLineage": columns}}])
    if first_stored:
        assert post(api, start).json()["stored"] == 1
    answer = post(api, [complete, start, other]).json()
    assert (answer["stored"], answer["duplicates"]) == ((2, 1) if first_stored else (3, 0))
    run = Run.objects.get(run_id=first)
    assert run.state == "COMPLETE" and run.duration_seconds == 90 and run.job.name == "a"
    assert Run.objects.get(run_id=second).job.name == "b" and Event.objects.count() == 3
    source = Node.objects.get(name="x.s.only_in_columns")
    assert source.entity_id is not None and not source.facets
    edge = ColumnEdge.objects.get()
    assert (edge.source_id, edge.source_field, edge.target.name, edge.target_field) == (source.pk, "v", "x.s.out", "score")
    assert edge.run.run_id == second
    assert {(e.source.name, e.target.name, e.run.run_id) for e in Edge.objects.select_related("source", "target", "run")} == {
        ("x.s.in", "a", first), ("a", "x.s.mid", first), ("x.s.mid", "b", second), ("b", "x.s.out", second)}
    assert Node.objects.get(name="a").last_run_id == run.pk


def test_a_failed_run_keeps_its_error_message_and_facets(api):
    run_id = uuid.uuid4()
    post(api, run_event("START", run_id=run_id, when="2026-11-30T10:00:00Z"))
    failed = run_event("FAIL", run_id=run_id, when="2026-11-30T10:00:42Z", run_facets={
        "errorMessage": facet(message="relation orders does not exist", programmingLanguage="SQL"),
        "parent": facet(run={"runId": str(uuid.uuid4())}, job={"namespace": "airflow", "name": "dag"}),
        "processing_engine": facet(version="3.5.0", name="spark")},
        job_facets={"sql": facet(query="select * from orders"),
                    "sourceCodeLocation": facet(type="git", url="https://git.example.org/etl.git")})
    assert post(api, failed).status_code == 201
    run = Run.objects.get(run_id=run_id)
    assert run.state == "FAIL" and run.error_message == "relation orders does not exist"
    assert run.parent_run_id is not None and run.facets["processing_engine"]["name"] == "spark"
    assert run.job_facets["sql"]["query"] == "select * from orders" and run.duration_seconds == 42


def test_column_lineage_becomes_column_edges_and_cycles_are_stored(api):
    column_lineage = facet(fields={"total": {"inputFields": [
        {"namespace": "postgres://db:5432", "name": "shop.public.orders", "field": "amount",
         "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION", "masking": False}]}]}})
    out = {"namespace": "postgres://db:5432", "name": "shop.public.totals", "facets": {"columnLineage": column_lineage}}
    assert post(api, run_event(job=("etl", "totals"), inputs=[("postgres://db:5432", "shop.public.orders")],
                               outputs=[out])).status_code == 201
    edge = ColumnEdge.objects.get()
    assert (edge.source.name, edge.source_field, edge.target.name, edge.target_field) == (
        "shop.public.orders", "amount", "shop.public.totals", "total")
    # A cycle: totals feeds a job that writes orders.
    assert post(api, run_event(job=("etl", "back"), inputs=[("postgres://db:5432", "shop.public.totals")],
                               outputs=[("postgres://db:5432", "shop.public.orders")])).status_code == 201
    assert Edge.objects.count() == 4


def test_credentials_in_namespaces_are_stripped_before_anything_is_stored(api):
    event = run_event(inputs=[("postgresql://etl_user:hunter2-secret@DB.internal:5432/", "shop.public.orders")],
                      outputs=[("s3a://lake", "/marts/orders"),
                               {"namespace": "s3://lake", "name": "x", "facets": {"dataSource": facet(
                                   name="lake", uri="https://key:hunter2-secret@lake.example.org/?token=hunter2-secret")}}])
    response = post(api, event)
    assert response.status_code == 201
    node = Node.objects.get(name="shop.public.orders")
    assert node.namespace == "postgres://db.internal:5432"
    assert Node.objects.filter(namespace="s3://lake", name="marts/orders").exists()
    stored = json.dumps([list(Event.objects.values_list("payload", flat=True)),
                         list(Node.objects.values_list("namespace", "facets")),
                         list(Entity.objects.values_list("data", flat=True)),
                         list(AuditEvent.objects.values_list("payload", flat=True))], default=str)
    assert "hunter2" not in stored and "etl_user" not in stored


def test_ownership_facet_names_a_team_the_sender_may_claim(api, team):
    other = TeamFactory(name="risk")
    owned = run_event(job=("etl", "owned"), job_facets={"ownership": facet(owners=[{"name": "team:data-eng"}])})
    foreign = run_event(job=("etl", "foreign"), job_facets={"ownership": facet(owners=[{"name": "risk"}])})
    assert post(api, [owned, foreign]).status_code == 201
    assert Node.objects.get(name="owned").entity.owner_team == team
    unowned = Node.objects.get(name="foreign").entity
    assert unowned.owner_team is None and other.pk  # the sender is not in `risk`: left for an admin


def test_a_declared_entity_is_joined_by_annotation_instead_of_an_observed_one(
        api, tmp_path, django_capture_on_commit_callbacks):
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: orders\n  annotations:\n"
        "    openlineage.io/dataset: postgres://db.internal:5432/shop.public.orders\n"
        "spec:\n  owner: data-eng\n---\n"
        "apiVersion: plinth.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: orders-etl\n  annotations:\n"
        "    openlineage.io/job: airflow/etl.orders\nspec:\n  type: other\n  owner: data-eng\n")})
    with django_capture_on_commit_callbacks(execute=True):  # the catalog tells lineage on commit
        catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    assert post(api, run_event(inputs=[("postgres://db.internal:5432", "shop.public.orders")])).status_code == 201
    assert Node.objects.get(type="job", name="etl.orders").entity.ref == "pipeline:default/orders-etl"
    assert Node.objects.get(type="dataset").entity.ref == "dataset:default/orders"
    assert not Entity.objects.filter(source="observed").exists()


def test_the_pipeline_page_shows_its_run_history(api, member):
    """State, start and a readable duration; a failed run's error under its state; no Job column while
    every run is of the one job (named below the table); the table scrolls inside its card."""
    post(api, run_event("COMPLETE", job=("etl", "history")))
    failed = uuid.uuid4()
    post(api, run_event("START", run_id=failed, job=("etl", "history"), when="2026-12-01T10:00:00Z"))
    post(api, run_event("FAIL", run_id=failed, job=("etl", "history"), when="2026-12-01T10:48:05Z",
                        run_facets={"errorMessage": facet(message="relation orders does not exist",
                                                          programmingLanguage="SQL")}))
    entity = Node.objects.get(name="history").entity
    page = Client()
    page.force_login(member)
    html = page.get(entity.get_absolute_url()).content.decode()
    assert "Runs (OpenLineage)" in html and "Complete" in html and "Failed" in html
    assert "48 min" in html and "relation orders does not exist" in html
    assert '<div class="table-scroll"' in html.split("Runs (OpenLineage)")[1]
    assert "<th>Job</th>" not in html and "<code>etl/history</code>" in html


def test_viewers_may_not_send_and_anonymous_callers_get_401(team):
    viewer = UserFactory(username="vic")
    MembershipFactory(user=viewer, team=team, role=Role.VIEWER)
    assert post(bearer(viewer), run_event()).status_code == 403
    assert post(Client(), run_event()).status_code == 401
    assert not Event.objects.exists() and not Node.objects.exists()


def test_unowned_assets_page_lets_platform_admins_claim_with_an_audit_event(api, team, member):
    post(api, run_event(job=("etl", "nobody")))
    entity = Node.objects.get(name="nobody").entity
    member_page = Client()
    member_page.force_login(member)
    assert member_page.get("/lineage/unowned/").status_code == 403
    admin = UserFactory(username="root", is_superuser=True)
    page = Client()
    page.force_login(admin)
    assert entity.name in page.get("/lineage/unowned/").content.decode()
    # Ids no row has ('²' passed str.isdigit and failed int(); 30 digits overflow the integer): 404, no 500.
    for odd in ("\u00b2", "9" * 30):
        assert page.post("/lineage/unowned/claim", {"entity": odd, "team": team.pk}).status_code == 404
    assert page.post("/lineage/unowned/claim", {"entity": entity.pk, "team": "\u00b2"}).status_code == 302
    entity.refresh_from_db()
    assert entity.owner_team is None  # no team chosen: nothing claimed
    response = page.post("/lineage/unowned/claim", {"entity": entity.pk, "team": team.pk})
    assert response.status_code == 302
    entity.refresh_from_db()
    assert entity.owner_team == team and entity.spec["owner"] == "group:default/data-eng"
    assert AuditEvent.objects.filter(action="catalog.entity.claim", target=entity.ref).exists()


def test_retention_prunes_old_runs_but_keeps_each_jobs_latest(api):
    for day in (1, 2, 3):
        run_id = uuid.uuid4()
        post(api, [run_event("START", run_id=run_id, when=f"2020-01-0{day}T00:00:00Z"),
                   run_event("COMPLETE", run_id=run_id, when=f"2020-01-0{day}T01:00:00Z")])
    assert services.runs_prune(older_than_days=30) == 2
    latest = Run.objects.get()
    assert latest.started_at.day == 3 and Event.objects.filter(run=latest).count() == 2
    assert services.runs_prune(older_than_days=30) == 0


def test_observed_entity_names_are_valid_and_distinct():
    a = services.entity_name("dataset", "postgres://a:5432", "db.public.orders")
    b = services.entity_name("dataset", "postgres://b:5432", "db.public.orders")
    long = services.entity_name("dataset", "s3://lake", "x/" * 200 + "part-0000.parquet")
    assert a != b and len(long) <= 63
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", n) for n in (a, b, long))
    assert copy.copy(a).startswith("db.public.orders-")


def test_observed_datasets_are_titled_the_way_people_read_their_address(api):
    """A local file reads as its URI (`file:///data/x.csv`), not as the annotation's `file//data/x.csv`."""
    assert post(api, run_event(inputs=[("file", "/data/x.csv"), ("s3://lake", "raw/orders.parquet")],
                               outputs=[("postgres://db:5432", "shop.public.orders")])).status_code == 201
    titles = {n.name: (n.entity.title, n.entity.annotations["openlineage.io/dataset"])
              for n in Node.objects.filter(type="dataset").select_related("entity")}
    assert titles == {"/data/x.csv": ("file:///data/x.csv", "file//data/x.csv"),
                      "raw/orders.parquet": ("s3://lake/raw/orders.parquet", "s3://lake/raw/orders.parquet"),
                      "shop.public.orders": ("postgres://db:5432/shop.public.orders",
                                             "postgres://db:5432/shop.public.orders")}


def test_credentials_hidden_behind_json_escapes_are_stripped_too(api):
    """`\\/` and `\\u0040` spell the same URL: the raw-body shortcut must not let them through."""
    body = json.dumps(run_event(inputs=[("postgres://HOST", "db.s.t")])).replace(
        "postgres://HOST", "postgres:\\/\\/etl:hunter2-secret\\u0040warehouse:5432")
    assert post(api, body).status_code == 201
    assert Node.objects.filter(namespace="postgres://warehouse:5432").exists()
    assert "hunter2" not in json.dumps(list(Event.objects.values_list("payload", flat=True)))


def test_a_descriptor_registered_later_supersedes_the_observed_entity(api, tmp_path,
                                                                     django_capture_on_commit_callbacks):
    post(api, run_event(job=("airflow", "late.job")))
    observed = Node.objects.get(name="late.job").entity
    assert observed.source == "observed"
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: late-job\n  annotations:\n"
        "    openlineage.io/job: airflow/late.job\nspec:\n  type: other\n  owner: data-eng\n")})
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    assert Node.objects.get(name="late.job").entity.ref == "pipeline:default/late-job"
    assert not Entity.objects.filter(pk=observed.pk).exists()
    assert AuditEvent.objects.filter(action="catalog.entity.observed_removed", target=observed.ref).exists()


def test_observed_entities_are_handed_to_receivers_as_they_would_read_them_back(api, member, team,
                                                                                 django_capture_on_commit_callbacks):
    """The observer sends what it wrote with the change (`snapshot`): search builds the same documents
    from it as from the rows, and docs builds are queued only for entities with docs (none here)."""
    from catalog import signals
    from catalog.search import CatalogSource
    from portal.search import selectors as search_selectors

    seen = []

    def record(sender, **kwargs):
        seen.append(kwargs)

    signals.entities_changed.connect(record, dispatch_uid="test.snapshot")
    try:
        documented = {"namespace": "postgres://wh:5432", "name": "db.sales.orders_clean", "facets": {
            "documentation": facet(description="Deduplicated sales orders, one row per order"),
            "ownership": facet(owners=[{"name": f"team:{team.name}"}])}}
        with django_capture_on_commit_callbacks(execute=True):
            response = post(api, run_event(job=("airflow", "etl.clean_orders"), inputs=[("s3://raw", "orders")],
                                           outputs=[documented]))
        assert response.status_code == 201, response.json()
    finally:
        signals.entities_changed.disconnect(dispatch_uid="test.snapshot")
    observed = [kw for kw in seen if kw.get("snapshot")]
    assert len(observed) == 1
    snapshot = observed[0]["snapshot"]
    refs = sorted(Entity.objects.filter(source="observed").values_list("ref", flat=True))
    assert sorted(snapshot) == refs and len(refs) == 3  # the job and its two datasets
    assert {ref: pk for ref, (pk, _, _) in snapshot.items()} == dict(
        Entity.objects.filter(ref__in=refs).values_list("ref", "pk"))
    from_snapshot = sorted(CatalogSource().documents_from_snapshot(snapshot), key=lambda d: d.key)
    read_back = sorted(CatalogSource().documents(refs), key=lambda d: d.key)
    assert from_snapshot == read_back
    clean = next(d for d in read_back if "orders_clean" in d.name)
    assert clean.owner_team_id == team.pk and "Deduplicated" in clean.description
    assert search_selectors.search(member, "deduplicated sales orders").hits[0].key == clean.key


def test_observed_entities_are_in_the_search_index_when_their_batch_commits(api):
    """SQLite: indexed inside the ingest's transaction (entities_staged), not by a hook after it: the
    documents are there as the batch's rows are, with no on-commit callback run at all (this test runs
    none). PostgreSQL indexes them right after the commit (tests/lineage/test_on_postgres.py)."""
    from django.db import connection

    from portal.search.models import SearchDocument

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL indexes observed entities after the commit (test_on_postgres.py)")

    response = post(api, run_event(job=("airflow", "etl.searchable"), inputs=[("s3://raw", "clicks")]))
    assert response.status_code == 201, response.json()
    refs = set(Entity.objects.filter(source="observed").values_list("ref", flat=True))
    assert len(refs) == 2
    assert set(SearchDocument.objects.filter(key__in=refs).values_list("key", flat=True)) == refs


@pytest.mark.django_db(transaction=True)
def test_ingest_batches_take_turns_on_a_file_lock_released_at_commit(member):
    """On SQLite a batch waits for its turn on a file lock beside the database and gives it up at commit,
    before the receivers of its changes run (they saw it free), so the next batch starts meanwhile."""
    import fcntl
    import os

    from django.db import connection

    from catalog import signals
    from portal.lineage import events as events_module
    from portal.lineage import spec as spec_module

    if connection.vendor != "sqlite":
        pytest.skip("the turn is SQLite's: PostgreSQL writers run at once")
    path = f"{connection.settings_dict['NAME']}.ingest-turn"
    free_in_receivers = []

    def probe(sender, **kwargs):
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            free_in_receivers.append(True)
        except BlockingIOError:
            free_in_receivers.append(False)
        finally:
            os.close(fd)

    with services._writer_turn() as release:
        other = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken while it is held
            release()
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once released
            fcntl.flock(other, fcntl.LOCK_UN)
        finally:
            os.close(other)
    body = json.dumps([run_event(job=("airflow", "etl.turns"), inputs=[("s3://raw", "turns")])]).encode()
    items, _, facts = events_module.parse_body(body)
    checked = [events_module.check(item, spec_module.load(), facts) for item in items]
    signals.entities_changed.connect(probe, dispatch_uid="test.turn")
    try:
        services.lineage_ingest(events=checked, actor=member)
    finally:
        signals.entities_changed.disconnect(dispatch_uid="test.turn")
    assert free_in_receivers == [True]
