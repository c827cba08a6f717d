"""The SDK against the live server: typed results, pagination, errors carrying the API's envelope,
uploads, validation, search, approvals, docs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from plinth_sdk import AsyncClient, Client, errors
from plinth_sdk.models import Entity

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(portal):
    with Client(portal.url, portal.token("alice")) as client:
        yield client


def test_me_and_typed_entities(alice):
    me = alice.me()
    assert me.username == "alice" and ("fraud-ml", "maintainer") in {(t.team, t.role) for t in me.teams}
    model = alice.entities.get("model:default/fraud-detector")
    assert isinstance(model, Entity) and model.ref == "model:default/fraud-detector"
    assert model.spec["owner"] and model.raw["metadata"]["name"] == "fraud-detector"


def test_listing_pages_through_every_entity_once(alice, portal):
    from django.test import Client as DjangoClient

    total = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {portal.token('alice')}").get(
        "/api/v1/entities?limit=1").json()["totalItems"]
    refs = [e.ref for e in alice.entities.list(page_size=7)]
    assert len(refs) == len(set(refs)) == total > 7
    assert [e.name for e in alice.entities.list(kind="model", limit=2)] == sorted(
        e.name for e in alice.entities.list(kind="model"))[:2]


def test_errors_carry_status_code_message_and_field(alice):
    with pytest.raises(errors.NotFoundError) as missing:
        alice.entities.get("model:default/no-such-model")
    assert missing.value.status == 404 and missing.value.code == "not_found"
    assert "no-such-model" in missing.value.message and missing.value.request_id
    with pytest.raises(errors.ValidationError) as bad:
        alice.templates.run("feature-set", {"name": "Not A Name!", "entityName": "customer", "joinKey": "id",
                                            "owner": "fraud-ml"}, dry_run=True)
    assert bad.value.status == 400 and bad.value.field == "name", bad.value.details
    assert str(bad.value).startswith("name:")


def test_a_wrong_token_is_an_authentication_error(portal):
    with Client(portal.url, "plt_wrong") as client, pytest.raises(errors.AuthenticationError) as exc:
        client.me()
    assert exc.value.status == 401


def test_validation_is_a_result_and_upload_registers(alice):
    result = alice.validation.validate(yaml="apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: x}\n"
                                            "spec: {type: service, lifecycle: production}\n")
    assert not result.valid and any(p.field == "spec.owner" for p in result.errors)
    descriptor = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: sdk-upload-model\n"
                  "spec:\n  type: classifier\n  lifecycle: experimental\n  owner: fraud-ml\n")
    dry = alice.locations.upload({"catalog-info.yaml": descriptor}, source="tests/sdk", dry_run=True)
    assert dry.dry_run and dry.added == ["model:default/sdk-upload-model"]
    plan = alice.locations.upload({"catalog-info.yaml": descriptor}, source="tests/sdk")
    assert plan.location is not None and alice.entities.get("model:default/sdk-upload-model").spec["type"] == "classifier"
    assert alice.locations.get(plan.location.id).entity_count == 1
    alice.locations.delete(plan.location.id)
    with pytest.raises(errors.NotFoundError):
        alice.entities.get("model:default/sdk-upload-model")


def test_search_templates_docs_and_approvals_listing(alice):
    hits = list(alice.search("fraud", kind="model", limit=3))
    assert hits and all(h.kind.lower() == "model" for h in hits)
    names = {t.name for t in alice.templates.list()}
    assert {"feature-set", "ml-model-service"} <= names
    assert alice.templates.get("feature-set").parameters
    assert alice.docs.url("component:default/plinth").endswith("/docs/component/default/plinth/")
    req = alice.approvals.request("deprecate", "model:default/fraud-detector", params={"reason": "sdk test"},
                                  justification="replaced")
    assert req.id in {r.id for r in alice.approvals.list(mine=True)}
    assert alice.approvals.withdraw(req.id).state == "withdrawn"
    with pytest.raises(errors.ConflictError) as conflict:
        alice.approvals.withdraw(req.id)
    assert conflict.value.status == 409 and conflict.value.extra.get("state") == "withdrawn"
    assert alice.approvals.wait(req.id, timeout=5).state == "withdrawn"  # a state it cannot leave ends a wait


def test_the_async_client_reads_the_same(portal):
    import asyncio

    async def main():
        async with AsyncClient(portal.url, portal.token("alice")) as client:
            me = await client.me()
            model = await client.entities.get("model:default/fraud-detector")
            refs = [e.ref async for e in client.entities.list(kind="model", page_size=2)]
            return me.username, model.ref, refs

    # A thread of its own: Playwright's sync API may have left an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        username, ref, refs = pool.submit(asyncio.run, main()).result(timeout=60)
    assert username == "alice" and ref == "model:default/fraud-detector" and len(refs) >= 3


def test_tokens_create_list_and_revoke(portal):
    """The secret comes once; a revoked token stops working; another user's token id is not found."""
    with Client(portal.url, portal.token("alice")) as alice:
        created = alice.tokens.create("sdk ci", expires_in_days=7)
        assert created.secret and created.active and created.expires_at
        listed = {t.id: t for t in alice.tokens.list()}
        assert listed[created.id].secret is None and listed[created.id].name == "sdk ci"
        with Client(portal.url, created.secret) as ci:
            assert ci.me().username == "alice"
            alice.tokens.revoke(created.id)
            with pytest.raises(errors.AuthenticationError):
                ci.me()
        with Client(portal.url, portal.token("carol")) as carol:
            theirs = carol.tokens.create("carol's")
        with pytest.raises(errors.NotFoundError):
            alice.tokens.revoke(theirs.id)
    with Client(portal.url, theirs.secret) as still:
        assert still.me().username == "carol"


def test_lineage_send_stores_a_batch_and_names_a_bad_events_index(alice):
    """`client.lineage.send`: one event or a batch; a refused batch names the failing event's field."""
    import uuid
    from pathlib import Path

    from django.conf import settings

    if not Path(settings.PLINTH_OPENLINEAGE_SPEC_DIR, "OpenLineage.json").is_file():
        pytest.skip("OpenLineage spec not found (../shared/compat/openlineage/spec)")

    def event(run_id: str) -> dict:
        return {"eventType": "START", "eventTime": "2026-11-30T10:00:00Z", "producer": "https://example.org/ci",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": run_id}, "job": {"namespace": "ci", "name": "train"},
                "inputs": [{"namespace": "s3://lake", "name": "features/churn"}]}

    first = str(uuid.uuid4())
    assert alice.lineage.send(event(first))["stored"] == 1
    second = str(uuid.uuid4())
    assert alice.lineage.send([event(first), event(second)]) == {
        "received": 2, "stored": 1, "duplicates": 1, "runs": [second]}
    with pytest.raises(errors.ValidationError) as bad:
        alice.lineage.send([event(str(uuid.uuid4())), event("not-a-uuid")])
    assert bad.value.status == 400 and "[1].run.runId" in str(bad.value)
def test_models_run_and_compare(alice, fraud_versions):
    """`client.models`: a version's MLflow run and a comparison with the API's numbers and errors."""
    from catalog.models import ExperimentRun, ModelVersion, RunInput

    run = ExperimentRun.objects.create(run_id="sdk-run-3", name="train-v3", params={"depth": "6"},
                                       metrics={"auc": 0.93}, history={"loss": [[0, 0.5], [1, 0.3]]})
    RunInput.objects.create(run=run, name="tx", namespace="s3://ml-data", dataset_name="fraud/tx.parquet",
                            context="training")
    ModelVersion.objects.filter(entity=fraud_versions, version="3").update(experiment_run=run)
    facts = alice.models.run("fraud-detector", 3)
    assert facts["runId"] == "sdk-run-3" and facts["history"]["loss"] == [[0, 0.5], [1, 0.3]]
    assert facts["inputs"][0]["namespace"] == "s3://ml-data" and facts["inputs"][0]["context"] == "training"
    body = alice.models.compare("model:default/fraud-detector", [2, 3])
    auc = next(m for m in body["metrics"] if m["name"] == "auc")
    assert body["baseline"] == "2" and auc["cells"][1]["delta"] == pytest.approx(0.02)
    assert auc["cells"][1]["verdict"] == "better"
    with pytest.raises(errors.ValidationError) as bad:
        alice.models.compare("fraud-detector", [2])
    assert bad.value.status == 400 and bad.value.field == "versions" and "compare 2 to 10" in bad.value.message
    with pytest.raises(errors.NotFoundError):
        alice.models.run("fraud-detector", 1)  # a version without a synced run
