"""Production profile smoke subset: PostgreSQL + Redis, run by `make test` with DATABASE_URL set.

The same code paths as the embedded default, on the production backends: ingestion's raw bulk
inserts, the facet cube, the API, tokens, the audit chain, and a real worker reporting readiness."""


import pytest
from django.test import Client

from catalog import services
from catalog.models import Entity, Relation
from portal.accounts import services as account_services
from portal.core.audit import verify_chain
from portal.core.models import AuditEvent

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only")]


@pytest.mark.django_db
def test_demo_catalog_on_postgresql(demo_org):
    detector = Entity.objects.get(ref="model:default/fraud-detector")
    assert detector.owner_team.name == "fraud-ml" and detector.uid
    assert detector.data["spec"]["riskTier"] == 1, "JSON stored as jsonb and read back"
    assert Relation.objects.filter(source_ref=detector.ref, type="ownedBy").exists()
    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="smoke")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = api.get("/api/v1/entities?filter=kind=model&fields=metadata.name").json()
    assert body["totalItems"] == 4
    facets = api.get("/api/v1/entity-facets?facet=kind&facet=metadata.tags").json()["facets"]
    assert {"value": "model", "count": 4} in facets["kind"]
    ok, message, count = verify_chain(AuditEvent.objects.order_by("seq"))
    assert ok, message
    assert count >= 1


@pytest.mark.django_db
def test_refresh_and_unregister_on_postgresql(tmp_path):
    path = tmp_path / "catalog-info.yaml"
    path.write_text("apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: pg-data, tags: [pii]}\n"
                    "spec: {owner: t, classification: pii}\n")
    plan = services.location_register(target=str(path), actor=None, file_roots=None)
    assert [c.ref for c in plan.added] == ["dataset:default/pg-data"]
    path.write_text(path.read_text().replace("pii]", "pii, gold]"))
    plan = services.location_refresh(location=plan.location)
    assert [c.ref for _, c in plan.changed] == ["dataset:default/pg-data"]
    assert Entity.objects.get(ref="dataset:default/pg-data").tags == ["pii", "gold"]
    services.location_unregister(location=plan.location, actor=None)
    assert not Entity.objects.exists()


@pytest.mark.worker
def test_a_real_worker_on_postgresql_and_redis_makes_the_portal_ready(celery_worker_process, mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    body = Client().get("/readyz").json()
    assert body["status"] == "ready", body
    assert "redis" in body["checks"]["broker"]["detail"].lower()


@pytest.mark.django_db
def test_postgresql_refuses_to_rewrite_the_audit_trail(demo_org):
    """Row triggers on PostgreSQL refuse UPDATE and DELETE of audit events, and `audit verify` passes."""
    from django.core.management import call_command
    from django.db import DatabaseError, connection, transaction

    for statement in ("UPDATE core_auditevent SET actor = 'mallory' WHERE seq = 1",
                      "DELETE FROM core_auditevent WHERE seq = 1"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(statement)
    assert AuditEvent.objects.get(seq=1).actor != "mallory"
    call_command("audit", "verify")


@pytest.mark.django_db
def test_parallel_registration_cube_and_search_on_postgresql(tmp_path, settings, django_user_model,
                                                            django_capture_on_commit_callbacks):
    from catalog import selectors
    from portal.search import selectors as search_selectors

    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    for i in range(12):  # enough files for two reading processes
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        (folder / "catalog-info.yaml").write_text(
            f"apiVersion: plinth.dev/v1alpha1\nkind: FeatureSet\nmetadata: {{name: pg-features-{i}, tags: [pii]}}\n"
            f"spec: {{owner: pg-team, features: [{{name: pg_basket_{i}, type: FLOAT}}]}}\n")
    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(tmp_path), actor=None, file_roots=None)
    assert len(plan.added) == 12 and not plan.errors
    assert Relation.objects.filter(source_ref="group:default/pg-team", type="ownerOf").count() == 12
    user = django_user_model.objects.create_user("pg-searcher")
    total, counts, capped, _ = selectors.list_counts(user, _params("tag=pii"), Entity.objects.all(), ["kind"])
    assert (total, counts["kind"], capped) == (12, [{"value": "featureset", "count": 12}], False)
    hits = search_selectors.search(user, "pg_basket_7").hits
    assert [h.key for h in hits] == ["featureset:default/pg-features-7"]


def _params(query: str):
    from django.http import QueryDict

    return QueryDict(query)
