"""The unified lineage graph (`portal.lineage.graph`, `GET /api/v1/lineage`): OpenLineage edges and catalog
relations, MLflow runs and model versions, deployments — one graph in Marquez's shape; cycles end;
private nodes of other teams dropped and counted, never named; a constant number of queries."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services as catalog_services
from portal.accounts.models import Role
from portal.lineage import graph, graph_sync
from portal.lineage.models import GraphEdge, Node, NodeType
from tests.factories import MembershipFactory, TeamFactory, UserFactory, write_files
from tests.lineage.conftest import post, run_event

pytestmark = pytest.mark.django_db
PG = "postgres://db:5432"


def _chain(api, *, prefix="etl", length=3, namespace=PG, start=0):
    """t{start} → job step{start+1} → t{start+1} → …, each job one COMPLETE run."""
    for i in range(start + 1, start + length + 1):
        response = post(api, run_event("COMPLETE", job=("airflow", f"{prefix}.step{i}"),
                                       inputs=[(namespace, f"shop.public.t{i - 1}")],
                                       outputs=[(namespace, f"shop.public.t{i}")]))
        assert response.status_code == 201, response.json()


def _ids(body: dict) -> set[str]:
    return {n["id"] for n in body["graph"]}


def _get(client, **params):
    return client.get("/api/v1/lineage", params)


def test_an_openlineage_chain_in_marquez_shape_with_edges_and_facts(api):
    _chain(api)
    body = _get(api, nodeId=f"dataset:{PG}:shop.public.t1", depth=2).json()
    assert _ids(body) == {f"dataset:{PG}:shop.public.t0", "job:airflow:etl.step1", f"dataset:{PG}:shop.public.t1",
                          "job:airflow:etl.step2", f"dataset:{PG}:shop.public.t2"}
    assert body["hidden"] == 0 and body["root"] == f"dataset:{PG}:shop.public.t1" and not body["truncated"]
    nodes = {n["id"]: n for n in body["graph"]}
    job = nodes["job:airflow:etl.step2"]
    assert job["type"] == "JOB" and set(job) == {"id", "type", "data", "inEdges", "outEdges"}
    assert job["inEdges"] == [{"origin": f"dataset:{PG}:shop.public.t1", "destination": "job:airflow:etl.step2"}]
    assert job["outEdges"] == [{"origin": "job:airflow:etl.step2", "destination": f"dataset:{PG}:shop.public.t2"}]
    assert job["data"]["lastRun"]["state"] == "COMPLETE"
    written = nodes[f"dataset:{PG}:shop.public.t2"]["data"]
    assert written["lastRun"]["state"] == "COMPLETE", "a dataset shows the run that last wrote it"
    assert written["ref"].startswith("dataset:default/") and written["url"].startswith("/catalog/dataset/default/")
    assert written["entity"].startswith("entity:dataset:default:")


def test_depth_and_direction(api):
    _chain(api, length=4)
    root = f"dataset:{PG}:shop.public.t2"
    assert _ids(_get(api, nodeId=root, depth=0).json()) == {root}
    down = _ids(_get(api, nodeId=root, depth=4, direction="downstream").json())
    assert down == {root, "job:airflow:etl.step3", f"dataset:{PG}:shop.public.t3", "job:airflow:etl.step4",
                    f"dataset:{PG}:shop.public.t4"}
    up = _ids(_get(api, nodeId=root, depth=1, direction="upstream").json())
    assert up == {root, "job:airflow:etl.step2"}


def test_a_node_mapped_to_an_entity_is_one_node_found_by_either_id(api):
    _chain(api, length=1)
    node = Node.objects.get(name="shop.public.t1")
    entity_id = graph.node_id_for_entity(node.entity)
    assert entity_id == f"dataset:{PG}:shop.public.t1", "the page asks with the lineage node's id"
    by_entity = _get(api, nodeId=f"entity:dataset:default:{node.entity.name}").json()
    assert by_entity["root"] == f"dataset:{PG}:shop.public.t1"
    assert _ids(by_entity) == _ids(_get(api, nodeId=entity_id).json())


def test_cycles_end(api):
    # a job that reads what it writes, and a longer loop a → j1 → b → j2 → a
    post(api, run_event("COMPLETE", job=("airflow", "self"), inputs=[(PG, "loop.self")], outputs=[(PG, "loop.self")]))
    post(api, run_event("COMPLETE", job=("airflow", "j1"), inputs=[(PG, "loop.a")], outputs=[(PG, "loop.b")]))
    post(api, run_event("COMPLETE", job=("airflow", "j2"), inputs=[(PG, "loop.b")], outputs=[(PG, "loop.a")]))
    body = _get(api, nodeId=f"dataset:{PG}:loop.a", depth=20).json()
    assert _ids(body) == {f"dataset:{PG}:loop.a", "job:airflow:j1", f"dataset:{PG}:loop.b", "job:airflow:j2"}
    assert len(body["graph"]) == 4, "each node once"
    selfish = _get(api, nodeId="job:airflow:self", depth=20).json()
    job = next(n for n in selfish["graph"] if n["id"] == "job:airflow:self")
    assert len(job["inEdges"]) == 1 and len(job["outEdges"]) == 1
    impact = api.get("/api/v1/lineage/impact", {"nodeId": f"dataset:{PG}:loop.a", "depth": 20}).json()
    assert impact["total"] == 3, "the root is not its own dependant"


def test_namespaces_with_colons_and_unnormalised_spellings_resolve(api):
    post(api, run_event("COMPLETE", job=("airflow", "x"), outputs=[("postgresql://DB.internal:5432", "a:b.c")]))
    for asked in ("dataset:postgres://db.internal:5432:a:b.c", "dataset:postgresql://DB.internal:5432:a:b.c"):
        body = _get(api, nodeId=asked).json()
        assert body["root"] == "dataset:postgres://db.internal:5432:a:b.c", asked


# -- visibility -----------------------------------------------------------------------------------------


@pytest.fixture
def private_middle(api, member, tmp_path, django_capture_on_commit_callbacks):
    """t0 → step1 → t1 → step2 → t2 → step3 → t3, where t2 is declared by a private dataset of another team."""
    other = TeamFactory(name="risk")
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: secret-scores\n  annotations:\n"
        f"    openlineage.io/dataset: {PG}/shop.public.t2\n    plinth.dev/visibility: private\n"
        "spec:\n  owner: risk\n")})
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    _chain(api, length=3)
    insider = UserFactory(username="rita")
    MembershipFactory(user=insider, team=other, role=Role.VIEWER)
    return {"insider": insider}


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_private_nodes_of_other_teams_are_dropped_counted_and_never_named(api, private_middle):
    response = _get(api, nodeId=f"dataset:{PG}:shop.public.t0", depth=6, direction="downstream")
    body = response.json()
    assert _ids(body) == {f"dataset:{PG}:shop.public.t0", "job:airflow:etl.step1", f"dataset:{PG}:shop.public.t1",
                          "job:airflow:etl.step2"}, "the walk stops at the private dataset and does not pass it"
    assert body["hidden"] == 1
    text = response.content.decode()
    assert "shop.public.t2" not in text and "secret-scores" not in text and "etl.step3" not in text
    job = next(n for n in body["graph"] if n["id"] == "job:airflow:etl.step2")
    assert job["outEdges"] == [], "no edge to the hidden node"
    # Its own team sees the whole chain.
    insider = _get(_session(private_middle["insider"]), nodeId=f"dataset:{PG}:shop.public.t0", depth=6,
                   direction="downstream").json()
    assert f"dataset:{PG}:shop.public.t3" in _ids(insider) and insider["hidden"] == 0


def test_an_invisible_root_answers_exactly_like_a_missing_one(api, private_middle):
    hidden = _get(api, nodeId=f"dataset:{PG}:shop.public.t2")
    missing = _get(api, nodeId=f"dataset:{PG}:shop.public.nope")
    by_entity = _get(api, nodeId="entity:dataset:default:secret-scores")
    assert hidden.status_code == missing.status_code == by_entity.status_code == 404
    assert hidden.content == missing.content == by_entity.content
    for path in ("/api/v1/lineage/impact", "/api/v1/lineage/columns"):
        assert api.get(path, {"nodeId": f"dataset:{PG}:shop.public.t2"}).content == \
            api.get(path, {"nodeId": f"dataset:{PG}:shop.public.nope"}).content


def test_anonymous_callers_get_401(api):
    _chain(api, length=1)
    assert Client().get("/api/v1/lineage", {"nodeId": f"dataset:{PG}:shop.public.t0"}).status_code == 401


# -- catalog relations, MLflow, deployments -------------------------------------------------------------


@pytest.fixture
def org(db, django_capture_on_commit_callbacks):
    """The demo organisation and catalog, with the receivers that run on commit run."""
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo

    with django_capture_on_commit_callbacks(execute=True):
        org = org_demo.load_org()
        assert not catalog_demo.load_catalog().errors
    return org


def test_catalog_relations_are_oriented_upstream_to_downstream(org):
    alice = _session(org["users"]["alice"])
    body = _get(alice, nodeId="entity:model:default:fraud-detector", depth=1).json()
    nodes = {n["id"]: n for n in body["graph"]}
    model = nodes["entity:model:default:fraud-detector"]
    origins = {e["origin"] for e in model["inEdges"]}
    # The training set is declared as an OpenLineage dataset (its openlineage.io/dataset annotation): the
    # entity is drawn as that node.
    assert {"dataset:s3://ml-data:fraud/transactions/2025", "entity:featureset:default:card-transactions-features",
            "entity:featureset:default:customer-profile-features"} <= origins
    assert {e["destination"] for e in model["outEdges"]} >= {"entity:component:default:fraud-scoring-service"}, \
        "the service that dependsOn the model is downstream of it"
    assert not any(i.startswith(("entity:group:", "entity:system:")) for i in nodes), "ownership/partOf are not lineage"
    service = _get(alice, nodeId="entity:component:default:fraud-scoring-service", depth=1,
                   direction="downstream").json()
    assert "entity:api:default:fraud-scoring-api" in _ids(service), "a component → the API it provides"


def test_rebuild_gives_the_edges_the_signals_kept(org):
    before = set(GraphEdge.objects.values_list("source", "target", "origin", "owner", "label"))
    assert before
    graph_sync.graph_edges_rebuild()
    assert set(GraphEdge.objects.values_list("source", "target", "origin", "owner", "label")) == before


def _relation_edges_by_hand() -> set[tuple]:
    """What `graph_sync` must write for the catalog's relations, worked out row by row from the tables."""
    from catalog.models import Entity, Relation
    from portal.lineage.models import entity_key

    by_ref = dict(Entity.objects.values_list("ref", "pk"))
    nodes: dict[int, int] = {}
    for pk, entity in Node.objects.filter(entity__isnull=False).values_list("pk", "entity_id"):
        nodes[entity] = min(pk, nodes.get(entity, pk))
    labels: dict[tuple, set[str]] = {}
    for owner, source_ref, type_, target_ref in Relation.objects.filter(type__in=list(graph_sync.FLOW)).values_list(
            "origin_id", "source_ref", "type", "target_ref"):
        if source_ref not in by_ref or target_ref not in by_ref:
            continue
        source, target = (nodes.get(by_ref[r], entity_key(by_ref[r])) for r in (source_ref, target_ref))
        up, down = (source, target) if graph_sync.FLOW[type_] else (target, source)
        if up != down:
            labels.setdefault((up, down, owner), set()).add(graph_sync.LABEL.get(type_, type_))
    return {(up, down, "relation", owner, min(names)) for (up, down, owner), names in labels.items()}


def test_relation_edges_are_the_relations_oriented_once_each(org, tmp_path, django_capture_on_commit_callbacks):
    """Both stored directions of a relation give one row; two lineage relations between the same pair
    give one row (the first label); a dangling relation gives none; an entity mapped to lineage nodes is
    drawn as its lowest node; a descriptor's edges change with it."""
    from catalog.models import Entity

    dataset = Entity.objects.get(ref="dataset:default/card-transactions-2025")
    Node.objects.create(type=NodeType.DATASET, namespace="s3://lg", name="a", key="a" * 64, entity=dataset)
    Node.objects.create(type=NodeType.DATASET, namespace="s3://lg", name="b", key="b" * 64, entity=dataset)
    first = Node.objects.filter(entity=dataset).order_by("pk").first()  # its declared node, made at registration
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: twice-tied}\nspec:\n"
        "  type: classifier\n  lifecycle: experimental\n  owner: fraud-ml\n"
        "  trainedOn: [card-transactions-2025, not-registered-yet]\n"
        "  dependsOn: [dataset:card-transactions-2025]\n")})
    with django_capture_on_commit_callbacks(execute=True):
        plan = catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None,
                                                  file_roots=None)
    assert not plan.errors, plan.errors
    model = Entity.objects.get(ref="model:default/twice-tied")
    assert set(GraphEdge.objects.filter(owner=model.pk).values_list("source", "target", "label")) == {
        (first.pk, graph_sync.entity_keys([model.pk])[model.pk], "dependsOn")}
    expected = _relation_edges_by_hand()
    assert graph_sync.graph_edges_rebuild() >= len(expected)
    assert set(GraphEdge.objects.filter(origin="relation").values_list(
        "source", "target", "origin", "owner", "label")) == expected
    assert len(expected) > 20


def test_a_kept_orphan_keeps_its_edges_and_costs_the_graph_no_clean_up(org, tmp_path, settings,
                                                                      django_capture_on_commit_callbacks):
    """Gone from its file under the `keep` strategy, a model stays in the catalog (flagged orphan) with its
    relations: its graph edges stay, and the refresh that orphans it deletes no edge rows (the refresh
    names it as orphaned, not removed)."""
    from catalog.models import Entity, Location

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    model = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: left-model}\nspec:\n"
             "  type: classifier\n  lifecycle: experimental\n  owner: fraud-ml\n  trainedOn: [left-data]\n")
    data = "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: left-data}\nspec: {owner: fraud-ml}\n"
    write_files(tmp_path, {"catalog-info.yaml": model + "---\n" + data})
    with django_capture_on_commit_callbacks(execute=True):
        assert not catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None,
                                                      file_roots=None).errors
    kept = Entity.objects.get(ref="model:default/left-model")
    edges = set(GraphEdge.objects.values_list("source", "target", "origin", "owner", "label"))
    assert any(owner == kept.pk for *_, owner, _label in edges)
    write_files(tmp_path, {"catalog-info.yaml": data})
    table = GraphEdge._meta.db_table
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_refresh(location=Location.objects.get(target=str(tmp_path / "catalog-info.yaml")))
    assert Entity.objects.get(pk=kept.pk).orphan
    assert set(GraphEdge.objects.values_list("source", "target", "origin", "owner", "label")) == edges
    assert not [q["sql"] for q in queries if q["sql"].startswith("DELETE") and table in q["sql"]]


def test_an_mlflow_run_version_and_deployment_chain_from_real_rows(org, api_admin, mlflow_url, settings, tmp_path,
                                                                   django_capture_on_commit_callbacks):
    """raw table → job → training set (declared Dataset) → MLflow run (log_input) → model version → model,
    and version → Deployment → the component that serves it; all from the real sync and CD event API."""
    import uuid

    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from catalog import mlflow_sync

    settings.MLFLOW_TRACKING_URI = mlflow_url
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: lg-train-set\n  annotations:\n"
        "    openlineage.io/dataset: s3://lg-data/train.parquet\nspec:\n  owner: fraud-ml\n")})
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
        assert post(api_admin, run_event("COMPLETE", job=("airflow", "features.build"),
                                         inputs=[(PG, "shop.public.raw")],
                                         outputs=[("s3://lg-data", "train.parquet")])).status_code == 201
    name = f"lg-model-{uuid.uuid4().hex[:6]}"
    client = MlflowClient(mlflow_url, mlflow_url)
    mlflow.set_tracking_uri(mlflow_url)
    experiment = client.create_experiment(name)
    with mlflow.start_run(experiment_id=experiment, run_name="train") as run:
        mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), source="s3://lg-data/train.parquet",
                                                 name="train"), context="training")
    client.create_registered_model(name)
    client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    with django_capture_on_commit_callbacks(execute=True):
        mlflow_sync.sync([name])
    model = f"model:default/{name}"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_admin.post("/api/v1/deployments/events", json.dumps({
            "model": model, "version": "1", "environment": "prod", "status": "live", "platform": "kserve",
            "servedBy": "component:default/fraud-scoring-service"}), content_type="application/json")
    assert response.status_code == 201, response.json()
    deployment = response.json()["deployment"]["ref"]
    dep_id = "entity:" + deployment.replace("/", ":")
    version_id = f"version:model:default:{name}:1"
    body = _get(api_admin, nodeId=f"dataset:{PG}:shop.public.raw", depth=8, direction="downstream").json()
    nodes = {n["id"]: n for n in body["graph"]}
    chain = [f"dataset:{PG}:shop.public.raw", "job:airflow:features.build", "dataset:s3://lg-data:train.parquet",
             f"run:{run.info.run_id}", version_id, dep_id, "entity:component:default:fraud-scoring-service",
             "entity:api:default:fraud-scoring-api"]
    for origin, destination in zip(chain, chain[1:], strict=False):
        assert {"origin": origin, "destination": destination} in nodes[origin]["outEdges"], (origin, destination)
    assert {"origin": version_id, "destination": f"entity:model:default:{name}"} in nodes[version_id]["outEdges"]
    assert nodes["dataset:s3://lg-data:train.parquet"]["data"]["ref"] == "dataset:default/lg-train-set"
    assert nodes[f"run:{run.info.run_id}"]["type"] == "RUN" and nodes[version_id]["type"] == "VERSION"
    assert nodes[dep_id]["data"]["status"] == "live" and nodes[dep_id]["data"]["environment"] == "prod"
    impact = api_admin.get("/api/v1/lineage/impact", {"nodeId": "dataset:s3://lg-data:train.parquet"}).json()
    assert impact["critical"][0]["id"] == dep_id and impact["critical"][0]["reason"] == "live deployment"
    assert impact["groups"][0]["kind"] == "deployment" and impact["groups"][0]["critical"]
    # The run and version ids are nodes of their own.
    assert _get(api_admin, nodeId=f"run:{run.info.run_id}", depth=1).json()["root"] == f"run:{run.info.run_id}"
    assert version_id in _ids(_get(api_admin, nodeId=dep_id, depth=1, direction="upstream").json())


@pytest.fixture
def api_admin(db):
    from tests.lineage.conftest import bearer

    return bearer(UserFactory(username="root-lg", is_superuser=True))


# -- impact -----------------------------------------------------------------------------------------------


def test_impact_groups_by_kind_and_team_with_production_models_first(org):
    bob = _session(org["users"]["bob"])
    body = bob.get("/api/v1/lineage/impact", {"nodeId": "entity:dataset:default:card-transactions-2025"}).json()
    assert body["root"] == "dataset:s3://ml-data:fraud/transactions/2025"  # the entity's declared node
    assert body["critical"][0]["id"] == "entity:model:default:fraud-detector"
    assert body["critical"][0]["reason"] == "production model" and body["critical"][0]["team"] == "fraud-ml"
    first = body["groups"][0]
    assert (first["kind"], first["team"], first["critical"]) == ("model", "fraud-ml", True)
    kinds = [g["kind"] for g in body["groups"]]
    assert "component" in kinds and "api" in kinds
    assert body["total"] == sum(len(g["items"]) for g in body["groups"])
    distances = {i["id"]: i["distance"] for g in body["groups"] for i in g["items"]}
    assert distances["entity:model:default:fraud-detector"] == 1
    assert distances["entity:api:default:fraud-scoring-api"] == 3
    impact = graph.impact("entity:dataset:default:card-transactions-2025", user=org["users"]["bob"], hops=1)
    assert impact.items[0]["id"] == "entity:model:default:fraud-detector", "critical first"
    assert {i["distance"] for i in impact.items} == {1}
    assert "job:airflow:training.fraud_detector" in {i["id"] for i in impact.items}  # the declared Pipeline


def test_impact_counts_what_another_team_may_not_see(org):
    carol = _session(org["users"]["carol"])  # recsys: chargeback-predictor is fraud-ml's private model
    body = carol.get("/api/v1/lineage/impact", {"nodeId": "entity:dataset:default:chargebacks-2025"}).json()
    assert body["hidden"] >= 1
    assert "chargeback-predictor" not in json.dumps(body)
    bob = _session(org["users"]["bob"])
    own = bob.get("/api/v1/lineage/impact", {"nodeId": "entity:dataset:default:chargebacks-2025"}).json()
    assert "entity:model:default:chargeback-predictor" in {i["id"] for g in own["groups"] for i in g["items"]}


# -- query counts -----------------------------------------------------------------------------------------


def _queries(client, path, params) -> int:
    client.get(path, params)  # warm: the token's first use, sessions
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path, params).status_code == 200
    return len(captured)


def test_a_constant_number_of_queries_whatever_the_size(api):
    _chain(api, length=2, prefix="small", namespace="postgres://small:5432")
    _chain(api, length=12, prefix="big", namespace="postgres://big:5432")
    for path, extra in (("/api/v1/lineage", {"depth": 20}), ("/api/v1/lineage/impact", {"depth": 20})):
        small = _queries(api, path, {"nodeId": "dataset:postgres://small:5432:shop.public.t0", **extra})
        big = _queries(api, path, {"nodeId": "dataset:postgres://big:5432:shop.public.t0", **extra})
        assert small == big, (path, small, big)
        assert big <= 8, big


def test_the_mixed_graph_takes_a_bounded_number_of_queries(org):
    alice = _session(org["users"]["alice"])
    few = _queries(alice, "/api/v1/lineage", {"nodeId": "entity:model:default:fraud-detector", "depth": 1})
    many = _queries(alice, "/api/v1/lineage", {"nodeId": "entity:model:default:fraud-detector", "depth": 10})
    assert few == many and many <= 10, (few, many)


def test_a_relation_to_an_entity_registered_later_is_drawn_when_it_arrives(api, tmp_path,
                                                                           django_capture_on_commit_callbacks):
    """The model names its training set before the set is registered: no edge, then one as soon as the
    dataset's registration commits (the refresh finds the descriptor that names it); unregistering the
    dataset's location takes the edge away again."""
    def register(folder: str, text: str):
        write_files(tmp_path / folder, {"catalog-info.yaml": text})
        with django_capture_on_commit_callbacks(execute=True):
            return catalog_services.location_register(target=str(tmp_path / folder / "catalog-info.yaml"),
                                                      actor=None, file_roots=None)

    register("model", "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: late-model\n"
                      "spec:\n  owner: data-eng\n  trainedOn: [late-set]\n")
    model = "entity:model:default:late-model"
    assert _ids(_get(api, nodeId=model, direction="upstream").json()) == {model}
    location = register("data", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: late-set\n"
                                "spec:\n  owner: data-eng\n")
    body = _get(api, nodeId=model, direction="upstream").json()
    assert _ids(body) == {model, "entity:dataset:default:late-set"}
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_unregister(location=location.location, actor=None)
    assert _ids(_get(api, nodeId=model, direction="upstream").json()) == {model}
    assert not GraphEdge.objects.filter(label="trainedOn").exists()


def test_a_relation_to_a_dataset_the_lineage_ingest_observes_later_is_drawn_when_it_arrives(
        api, tmp_path, django_capture_on_commit_callbacks):
    """Observed entities take the receiver's short path (they own no edges): the descriptors naming them
    still get their edges as soon as the ingest that creates them commits."""
    from portal.lineage import services as lineage_services

    name = lineage_services.entity_name("dataset", PG, "db.public.features_late")
    write_files(tmp_path / "model", {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: watcher-model\n"
        f"spec:\n  owner: data-eng\n  trainedOn: [{name}]\n")})
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(tmp_path / "model" / "catalog-info.yaml"), actor=None,
                                           file_roots=None)
    model = "entity:model:default:watcher-model"
    assert _ids(_get(api, nodeId=model, direction="upstream").json()) == {model}
    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, run_event(job=("etl", "build_features"),
                                   outputs=[(PG, "db.public.features_late")])).status_code == 201
    dataset = Node.objects.get(name="db.public.features_late")
    assert dataset.entity.name == name and dataset.entity.source == "observed"
    assert _ids(_get(api, nodeId=model, direction="upstream").json()) == {
        model, dataset.node_id, "job:etl:build_features"}


def test_a_namespace_urllib_cannot_read_is_kept_as_sent_and_graphed(api):
    """`https://[warehouse` (an unbalanced bracket) is no URL urllib reads: the event is stored with the
    namespace as sent, and the graph finds it (both answered 500 before)."""
    bad = "https://[warehouse"
    answer = post(api, run_event("COMPLETE", inputs=[(bad, "orders")], outputs=[(PG, "shop.public.t9")]))
    assert answer.status_code == 201, answer.content
    assert Node.objects.filter(namespace=bad, name="orders").exists()
    body = _get(api, nodeId=f"dataset:{bad}:orders", depth=2)
    assert body.status_code == 200, body.content
    assert f"dataset:{PG}:shop.public.t9" in _ids(body.json())
