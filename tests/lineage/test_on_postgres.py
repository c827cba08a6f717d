"""The lineage writes on PostgreSQL (run by `make test`'s production-profile pass): the ON CONFLICT
upserts of edges and column edges, bulk ids of runs, jsonb payloads, and idempotency."""


import uuid

import pytest

from tests.lineage import test_bad_input as bad
from tests.lineage import test_graph as graph
from tests.lineage import test_ingest as ingest
from tests.lineage import test_review_s33 as review
from tests.lineage.conftest import facet, post, run_event
from tests.lineage.test_graph import org  # noqa: F401 (a fixture, used below)

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_idempotency_and_run_merging_on_postgresql(api):
    ingest.test_resending_is_idempotent_and_a_late_start_does_not_undo_complete(api)


def test_column_edges_and_cycles_on_postgresql(api):
    ingest.test_column_lineage_becomes_column_edges_and_cycles_are_stored(api)


def test_credentials_stripped_on_postgresql(api):
    ingest.test_credentials_in_namespaces_are_stripped_before_anything_is_stored(api)


def test_real_dbt_events_on_postgresql(api, compat):
    ingest.test_dbt_runs_recorded_from_the_real_integration_build_a_graph(api, compat)


def test_relation_edges_written_in_one_statement_on_postgresql(org, tmp_path,  # noqa: F811 (the fixture)
                                                               django_capture_on_commit_callbacks):
    graph.test_relation_edges_are_the_relations_oriented_once_each(org, tmp_path, django_capture_on_commit_callbacks)


def test_a_failed_write_rolls_back_on_postgresql(api, monkeypatch):
    bad.test_a_failure_while_storing_rolls_the_whole_batch_back(api, monkeypatch)


@pytest.mark.django_db(transaction=True)
def test_the_same_new_run_from_two_requests_at_once(member):
    """Two CI jobs send events of one new run at the same moment: both answer 201, one run, both events."""
    import uuid

    from portal.lineage.models import Event, Run
    from tests.lineage.conftest import bearer, run_event

    run_id = uuid.uuid4()
    bodies = [run_event("START", run_id=run_id), run_event("COMPLETE", run_id=run_id, when="2026-11-30T10:01:00Z")]
    assert _at_once([bearer(member), bearer(member)], bodies) == [201, 201]
    assert Run.objects.get(run_id=run_id).state == "COMPLETE" and Event.objects.count() == 2


@pytest.mark.parametrize("constant", ["NaN", "Infinity"])
def test_nan_in_a_facet_is_a_400_on_postgresql(api, constant):
    bad.test_nan_and_infinity_in_a_custom_facet_answer_the_same_on_every_database(api, constant)


@pytest.mark.django_db(transaction=True)
def test_two_batches_creating_the_same_new_nodes_in_opposite_orders_both_land(member):
    """Two producers name the same 150 new datasets at once, in opposite orders (and so do their observed
    entities): each batch waits for the other's locks instead of deadlocking; both answer 201, every
    dataset is one node with one observed entity. Five rounds, new names each time."""
    from portal.lineage.models import Node
    from tests.lineage.conftest import bearer, run_event

    clients = [bearer(member), bearer(member)]
    for round_ in range(5):
        names = [("postgres://race:5432", f"db.public.r{round_}_t{i:03d}") for i in range(150)]
        bodies = [run_event("COMPLETE", job=("race", f"writer_a_{round_}"), outputs=names),
                  run_event("COMPLETE", job=("race", f"writer_b_{round_}"), outputs=names[::-1])]
        answers = _at_once(clients, bodies)
        assert answers == [201, 201], (round_, answers)
        stored = Node.objects.filter(namespace="postgres://race:5432", name__startswith=f"db.public.r{round_}_")
        assert stored.count() == 150 and not stored.filter(entity__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_observed_entities_are_searchable_when_the_request_returns_on_postgresql(member):
    """On PostgreSQL the batch's observed entities are indexed right after its commit, in a transaction of
    their own (not holding the batch's new keys while the other writers wait): by the time the request
    answers they are found, by a reader of another connection."""
    import threading

    from catalog.models import Entity
    from portal.search import selectors as search_selectors
    from portal.search.models import SearchDocument
    from tests.lineage.conftest import bearer, post, run_event

    response = post(bearer(member), run_event(job=("airflow", "etl.findable_after_commit"),
                                              inputs=[("s3://raw", "clickstream_sessions")]))
    assert response.status_code == 201, response.json()
    refs = set(Entity.objects.filter(source="observed").values_list("ref", flat=True))
    assert len(refs) == 2
    found = {}

    def read():  # a connection of its own: it sees only what is committed
        from django.db import connection
        try:
            found["keys"] = set(SearchDocument.objects.filter(key__in=refs).values_list("key", flat=True))
            found["hits"] = [h.key for h in search_selectors.search(member, "clickstream sessions").hits]
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    assert found["keys"] == refs
    dataset = next(ref for ref in refs if ref.startswith("dataset:"))
    assert found["hits"][:1] == [dataset], found["hits"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_index_after_the_commit_keeps_the_batch_and_reindex_repairs_it(member, monkeypatch, caplog):
    """The index write after the commit fails (the database refuses it): the batch stays stored and
    answers 201, the failure is logged, and the repair sweep (`index.repair`, on the beat) makes the
    entities findable once they are older than its settle time."""
    from catalog.models import Entity
    from portal.lineage.models import Event, Node
    from portal.search import index
    from portal.search.models import SearchDocument
    from tests.lineage.conftest import bearer, post, run_event

    def refuse(self, documents, **kwargs):
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1/0")  # a real database error, raised by PostgreSQL

    monkeypatch.setattr(index.Staged, "write", refuse)
    response = post(bearer(member), run_event(job=("airflow", "etl.index_refused"), inputs=[("s3://raw", "refused")]))
    assert response.status_code == 201, response.json()
    refs = set(Entity.objects.filter(source="observed").values_list("ref", flat=True))
    assert len(refs) == 2 and Node.objects.count() == 2 and Event.objects.count() == 1
    assert not SearchDocument.objects.filter(key__in=refs).exists()
    assert "search index of 2 observed entities failed" in caplog.text
    monkeypatch.undo()
    assert index.repair()["catalog"] == {"indexed": 0, "removed": 0}  # younger than the settle time
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 2, "removed": 0}
    assert set(SearchDocument.objects.filter(key__in=refs).values_list("key", flat=True)) == refs


def _at_once(clients, bodies) -> list[int]:
    """POST each body with its client from a thread of its own, released together; the status codes."""
    import threading

    from django.db import connection

    from tests.lineage.conftest import post

    barrier, answers = threading.Barrier(len(bodies)), []

    def send(i):
        barrier.wait()
        try:
            answers.append(post(clients[i], bodies[i]).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_batches_larger_than_one_statement_land_whole_on_postgresql(api):
    """PostgreSQL writes a batch VALUES_ROWS rows to a statement (`core.db.execute_values`, `update_values`): 700
    runs of 350 jobs, each reading one dataset and writing another with a schema, then their COMPLETE
    events in a second batch (the stored runs updated), then new facets for every dataset (the nodes
    updated). Every row is there once, with the values of its own event."""
    from portal.core.db import VALUES_ROWS
    from portal.lineage.models import Edge, Event, Node, Run
    from tests.lineage.conftest import facet, post, run_event

    assert VALUES_ROWS < 700
    schema = facet(fields=[{"name": "id", "type": "BIGINT"}])
    runs = [(uuid.uuid4(), f"job_{i % 350:03d}", i) for i in range(700)]

    def event(kind, run_id, job, i, **extra):
        when = f"2026-11-30T{10 + i // 350:02d}:{i % 60:02d}:00Z" if kind == "START" else \
            f"2026-11-30T{12 + i // 350:02d}:{i % 60:02d}:00Z"
        return run_event(kind, run_id=run_id, when=when, job=("ci", job), inputs=[("s3://lake", f"in/{job}")],
                         outputs=[{"namespace": "s3://lake", "name": f"out/{job}", "facets": {"schema": schema}}],
                         **extra)

    assert post(api, [event("START", *run) for run in runs]).status_code == 201
    assert Run.objects.count() == 700 and Event.objects.count() == 700
    assert Edge.objects.count() == 700  # 350 jobs × (input → job, job → output)
    errors = {run_id: f"failed {i}" for run_id, _, i in runs if i % 7 == 0}
    completes = [event("FAIL" if run_id in errors else "COMPLETE", run_id, job, i,
                       run_facets={"errorMessage": facet(message=errors[run_id], programmingLanguage="python")}
                       if run_id in errors else None) for run_id, job, i in runs]
    assert post(api, completes).status_code == 201
    stored = {r.run_id: r for r in Run.objects.all()}
    assert len(stored) == 700 and Event.objects.count() == 1400
    for run_id, _, _i in runs:
        run = stored[run_id]
        assert run.state == ("FAIL" if run_id in errors else "COMPLETE"), run_id
        assert run.error_message == errors.get(run_id, ""), run_id
        assert run.ended_at is not None and run.started_at is not None and run.ended_at > run.started_at
    # Each job's last run is its later one (runs i and i + 350 share a job; i + 350 started an hour later).
    later = {job: run_id for run_id, job, i in runs if i >= 350}
    jobs = {n.name: n for n in Node.objects.filter(type="job", namespace="ci")}
    assert {name: stored_run.run_id for name, n in jobs.items()
            for stored_run in [Run.objects.get(pk=n.last_run_id)]} == later
    # New facets for all 350 output datasets in one batch: every node is updated, none is lost.
    quality = facet(rowCount=42, columnMetrics={})
    again = [run_event("COMPLETE", when="2026-11-30T15:00:00Z", job=("ci", f"job_{j:03d}"),
                       outputs=[{"namespace": "s3://lake", "name": f"out/job_{j:03d}",
                                 "facets": {"dataQualityMetrics": quality}}]) for j in range(350)]
    assert post(api, again).status_code == 201
    outputs = Node.objects.filter(type="dataset", name__startswith="out/")
    assert outputs.count() == 350
    for node in outputs:
        assert set(node.facets) >= {"schema", "dataQualityMetrics"}, node.name
        assert node.facets["dataQualityMetrics"]["rowCount"] == 42
    assert Node.objects.filter(entity_id__isnull=True).count() == 0  # every node got its observed entity


def test_the_batch_lookups_probe_the_unique_index_on_postgresql(monkeypatch):
    """A batch names ~2,300 nodes by key. As an `IN` list PostgreSQL's cost model (random page cost 4)
    chose a parallel scan of the whole node table for it, 5-7× slower than probing the unique index
    once per key; the lookup is written so that it cannot. Checked by the plan, on a table the planner
    would scan, and by the rows: every key once, across several chunks, unknown keys left out."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.core.db import insert_values
    from portal.lineage import services
    from portal.lineage.models import Node, node_key

    names = [f"t{i}" for i in range(3000)]
    keys = [node_key("dataset", "warehouse", name) for name in names]
    insert_values(Node, ["key", "type", "namespace", "name", "facets", "created_at", "updated_at"],
                  [(key, "dataset", "warehouse", name, "{}", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z")
                   for key, name in zip(keys, names, strict=True)], "")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE lineage_node")
    monkeypatch.setattr(services, "CHUNK", 1000)
    wanted = keys[::2] + [node_key("dataset", "warehouse", "nowhere"), keys[0]]  # 1,500 known, 1 unknown, 1 again
    with CaptureQueriesContext(connection) as queries:
        rows = services._select_in(Node, ["id", "key"], "key", wanted)
    assert len(queries) == 2, "1,501 distinct keys in chunks of 1,000"
    assert sorted(key for _, key in rows) == sorted(keys[::2]), "each known key once"
    by_id = dict(Node.objects.filter(key__in=keys[::2]).values_list("id", "key"))
    assert dict(rows) == by_id

    sql = queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN SELECT id, key FROM lineage_node WHERE key IN ({', '.join(['%s'] * 1000)})",  # noqa: S608 (placeholders only)
                       wanted[:1000])
        in_list = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" in in_list, f"the planner scans the table for an IN list here:\n{in_list}"
    assert "Seq Scan on lineage_node" not in plan and "Index Scan using lineage_node_key_once" in plan, plan


def test_a_lone_surrogate_in_a_facet_is_a_400_on_postgresql(api):
    """jsonb refuses \\ud800: it was a 500 here (and stored on SQLite)."""
    review.test_a_lone_surrogate_anywhere_is_a_400_naming_where(
        api, run_event(run_facets={"custom": facet(v="VALUE")}), "VALUE", "run.facets.custom.v")
    review.test_a_surrogate_pair_is_a_character_like_any_other(api)


def test_a_column_lineage_source_of_5000_characters_is_a_400_on_postgresql(api):
    """The node's name column holds 1,000: a DataError (500) before the source names were checked."""
    from portal.lineage.models import Event, Node

    lineage = facet(fields={"out": {"inputFields": [{"namespace": "pg", "name": "x" * 5000, "field": "c"}]}})
    response = post(api, run_event("COMPLETE", outputs=[{"namespace": "pg", "name": "out",
                                                         "facets": {"columnLineage": lineage}}]))
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["outputs[0].facets.columnLineage.fields.out.inputFields[0].name"]
    assert not Node.objects.exists() and not Event.objects.exists()


def test_a_run_id_of_another_job_is_a_409_on_postgresql(api):
    review.test_a_run_id_reused_by_another_job_is_a_409_and_changes_nothing(api)
