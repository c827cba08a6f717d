"""MLflow stays current without waiting: a sync when a worker starts, "Sync now" on the model page, and
MLflow 3's signed webhooks, against the suite's real `mlflow server` (SQL backend, which is what delivers
webhooks) and a real Celery worker."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import Client
from mlflow.tracking import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature
from mlflow.webhooks.types import get_example_payload_for_event

from catalog import mlflow_sync
from catalog.models import Entity, MlflowSyncJob, MlflowSyncState, MlflowWebhookDelivery, ModelVersion
from portal.site import mlflow_demo
from tests.conftest import start_celery_worker

SECRET = "whsec-plinth-tests"
URL = "/api/v1/webhooks/mlflow"


def wait_for(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def new_model(client: MlflowClient, versions: int = 2) -> str:
    name = f"wh-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    experiment = client.get_experiment_by_name("webhook-tests") or None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("webhook-tests")
    for number in range(1, versions + 1):
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "auc", 0.8 + number / 100)
        client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return name


def deliver(http: Client, event: str, data: dict, *, secret: str = SECRET, delivery_id: str | None = None,
            timestamp: int | None = None, signature: str | None = None):
    """POST what MLflow's webhook delivery sends: its envelope, headers and signing function."""
    entity, action = event.split(".")
    body = json.dumps({"entity": entity, "action": action, "timestamp": "2026-12-02T17:00:00+00:00", "data": data})
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "HTTP_X_MLFLOW_DELIVERY_ID": delivery_id,
        "HTTP_X_MLFLOW_TIMESTAMP": stamp,
        "HTTP_X_MLFLOW_SIGNATURE": signature or _generate_hmac_signature(secret, delivery_id, stamp, body),
    }
    return http.post(URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def webhook_settings(settings, mlflow_url):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    settings.PLINTH_MLFLOW_WEBHOOK_SECRET = SECRET
    return settings


# --- the endpoint, with MLflow's own payload shapes and signing function ----------------------------


@pytest.mark.django_db
def test_signed_delivery_queues_a_targeted_sync(demo_org, webhook_settings, django_capture_on_commit_callbacks):
    payload = {**get_example_payload_for_event_str("model_version_alias.created"), "name": "fraud-detector"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(Client(), "model_version_alias.created", payload)
    assert response.status_code == 202, response.content
    assert response.json() == {"queued": {"sync": "fraud-detector", "event": "model_version_alias.created"}}
    assert len(callbacks) == 1  # the sync task, queued once the delivery row is committed
    assert MlflowWebhookDelivery.objects.get().model_name == "fraud-detector"


def get_example_payload_for_event_str(event: str) -> dict:
    from mlflow.entities.webhook import WebhookEvent

    return dict(get_example_payload_for_event(WebhookEvent.from_str(event)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("bad signature", 401, "does not match"),
        ("wrong secret", 401, "does not match"),
        ("no signature", 401, "missing header(s): X-MLflow-Signature"),
        ("stale timestamp", 401, "away from the portal's clock"),
        ("future timestamp", 401, "away from the portal's clock"),
        ("unknown model", 400, "is not in the catalog"),
        ("prompt event", 400, "is not one Plinth handles"),
        ("no name", 400, "data.name"),
    ],
)
def test_refused_deliveries_change_nothing(demo_org, webhook_settings, case, status, message,
                                           django_capture_on_commit_callbacks):
    http = Client()
    data = {**get_example_payload_for_event_str("model_version.created"), "name": "fraud-detector"}
    event, kwargs = "model_version.created", {}
    if case == "bad signature":
        kwargs["signature"] = "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmU="
    elif case == "wrong secret":
        kwargs["secret"] = "another-secret"
    elif case == "no signature":
        kwargs["signature"] = " "
    elif case == "stale timestamp":
        kwargs["timestamp"] = int(time.time()) - 3600
    elif case == "future timestamp":
        kwargs["timestamp"] = int(time.time()) + 3600
    elif case == "unknown model":
        data["name"] = "no-such-model"
    elif case == "prompt event":
        event = "prompt.created"
    elif case == "no name":
        data.pop("name")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = deliver(http, event, data, **kwargs)
    assert response.status_code == status, response.content
    assert message in response.json()["error"]["message"]
    assert not callbacks and not MlflowWebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_replayed_delivery_is_refused(demo_org, webhook_settings, django_capture_on_commit_callbacks):
    data = {**get_example_payload_for_event_str("model_version_alias.deleted"), "name": "fraud-detector"}
    delivery_id, stamp = str(uuid.uuid4()), int(time.time())
    with django_capture_on_commit_callbacks(execute=False):
        assert deliver(Client(), "model_version_alias.deleted", data, delivery_id=delivery_id,
                       timestamp=stamp).status_code == 202
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = deliver(Client(), "model_version_alias.deleted", data, delivery_id=delivery_id, timestamp=stamp)
    assert again.status_code == 401 and "already received: a replay" in again.json()["error"]["message"]
    assert not callbacks and MlflowWebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_webhooks_are_off_without_a_secret(demo_org, settings):
    settings.PLINTH_MLFLOW_WEBHOOK_SECRET = None
    response = deliver(Client(), "registered_model.created", {"name": "fraud-detector", "tags": {}})
    assert response.status_code == 404 and "PLINTH_MLFLOW_WEBHOOK_SECRET" in response.json()["error"]["message"]


# --- the real thing: worker start-up sync, MLflow delivering webhooks, Sync now ----------------------


def test_worker_start_webhooks_and_sync_now_keep_the_catalog_current(
    transactional_db, live_server, redis_url, mlflow_url, settings, monkeypatch
):
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo

    org_demo.load_org()
    catalog_demo.load_catalog()
    settings.MLFLOW_TRACKING_URI = mlflow_url
    settings.PLINTH_MLFLOW_WEBHOOK_SECRET = SECRET
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    mlflow = MlflowClient(mlflow_url, mlflow_url)
    mlflow_demo.seed(mlflow_url)
    name = new_model(mlflow)
    assert not ModelVersion.objects.exists()

    worker = start_celery_worker(redis_url, env={"PLINTH_MLFLOW_SYNC_ON_START": "true"})
    hook = None
    try:
        # 1. The worker syncs once when it starts: no waiting for the five-minute beat.
        wait_for(lambda: MlflowSyncState.objects.filter(last_success_at__isnull=False).exists(),
                 timeout=90, what="the start-up sync")  # a worker starting on a loaded machine
        assert ModelVersion.objects.filter(entity__name=name).count() == 2
        assert ModelVersion.objects.filter(entity__name="fraud-detector").exists()

        # 2. MLflow itself delivers signed webhooks; each queues a sync of that model only.
        hook = mlflow.create_webhook(
            name=f"plinth-{name}", url=f"{live_server.url}{URL}", secret=SECRET,
            events=["registered_model.created", "model_version.created", "model_version_alias.created",
                    "model_version_alias.deleted", "model_version_tag.set", "model_version_tag.deleted"],
        )
        assert mlflow.test_webhook(hook.webhook_id).response_status == 400  # MLflow's example model is unknown
        time.sleep(1.2)  # the server re-reads its webhook list every second (tests/services.py)
        mlflow.set_registered_model_alias(name, "champion", "2")
        wait_for(lambda: ModelVersion.objects.filter(entity__name=name, version="2", aliases=["champion"]).exists(),
                 what="the alias delivered by MLflow's webhook")
        assert MlflowWebhookDelivery.objects.filter(model_name=name, event="model_version_alias.created").exists()
        mlflow.delete_registered_model_alias(name, "champion")
        wait_for(lambda: ModelVersion.objects.filter(entity__name=name, version="2", aliases=[]).exists(),
                 what="the alias removal")
        brand_new = f"wh-new-{uuid.uuid4().hex[:6]}"
        mlflow.create_registered_model(brand_new)  # unknown to the catalog, but a creation is accepted
        wait_for(lambda: Entity.objects.filter(name=brand_new, source="mlflow").exists(), what="the new model")

        # 3. "Sync now" on the page of a model MLflow did not tell us about (no webhook for it).
        mlflow.delete_webhook(hook.webhook_id)
        hook = None
        time.sleep(1.2)
        mlflow.set_registered_model_alias(name, "challenger", "1")
        entity = Entity.objects.get(name=name)
        entity_url = entity.get_absolute_url()
        admin = Client()
        admin.force_login(org_demo.load_org()["users"]["grace"])
        response = admin.post(f"{entity_url}mlflow-sync/", HTTP_HX_REQUEST="true")
        assert response.status_code == 202 and "Queued in Plinth" in response.content.decode()
        job = MlflowSyncJob.objects.get(entity=entity)
        wait_for(lambda: MlflowSyncJob.objects.get(pk=job.pk).state == "done", what="the Sync now job")
        status = admin.get(f"{entity_url}mlflow-sync/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
        assert "Synced 2 versions" in status and "hx-trigger" not in status  # polling stops when done
        assert ModelVersion.objects.get(entity=entity, version="1").aliases == ["challenger"]
    finally:
        if hook is not None:
            mlflow.delete_webhook(hook.webhook_id)
        worker.stop()


@pytest.mark.django_db
def test_sync_now_is_for_owners_and_admins_with_csrf(demo_org, mlflow_url, settings,
                                                     django_capture_on_commit_callbacks):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    url = "/catalog/model/default/fraud-detector/mlflow-sync/"
    users = demo_org["users"]
    for username, status in (("erin", 403), ("carol", 403)):  # a reviewer; another team's maintainer
        http = Client()
        http.force_login(users[username])
        assert http.post(url).status_code == status
        assert "Sync from MLflow now" not in http.get("/catalog/model/default/fraud-detector/").content.decode()
    carol = Client()
    carol.force_login(users["carol"])
    assert carol.post("/catalog/model/default/chargeback-predictor/mlflow-sync/").status_code == 404  # private
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(users["bob"])
    assert guarded.post(url).status_code == 403
    assert not MlflowSyncJob.objects.exists()

    bob = Client()
    bob.force_login(users["bob"])
    assert "Sync from MLflow now" in bob.get("/catalog/model/default/fraud-detector/").content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = bob.post(url, HTTP_HX_REQUEST="true")
        second = bob.post(url)  # a double click: the running job, not a second one
    assert first.status_code == 202 and second.status_code == 302
    job = MlflowSyncJob.objects.get()
    assert second["Location"].endswith(f"/versions/?sync={job.pk}") and len(callbacks) == 1
    page = bob.get(second["Location"]).content.decode()
    assert f"mlflow-sync/{job.pk}/" in page and "Queued in Plinth" in page


def test_targeted_sync_reads_only_the_named_model_and_forgets_deleted_ones(db, mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    mlflow = MlflowClient(mlflow_url, mlflow_url)
    keep, gone = new_model(mlflow, versions=1), new_model(mlflow, versions=1)
    assert mlflow_sync.sync([keep, gone])["models"] == 2
    mlflow.delete_registered_model(gone)
    assert mlflow_sync.sync([gone]) == {"models": 1, "versions": 0}
    assert not ModelVersion.objects.filter(entity__name=gone).exists()
    assert ModelVersion.objects.filter(entity__name=keep).count() == 1


def test_the_webhook_command_registers_once_and_updates_in_place(db, mlflow_url, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.MLFLOW_TRACKING_URI = mlflow_url
    settings.PLINTH_MLFLOW_WEBHOOK_SECRET = None
    with pytest.raises(CommandError, match="PLINTH_MLFLOW_WEBHOOK_SECRET is not set"):
        call_command("catalog", "mlflow-webhook", "--url", "http://127.0.0.1:9/api/v1/webhooks/mlflow")
    settings.PLINTH_MLFLOW_WEBHOOK_SECRET = SECRET
    mlflow = MlflowClient(mlflow_url, mlflow_url)
    first = mlflow_sync.register_webhook(url="http://127.0.0.1:9/a", secret=SECRET)
    try:
        call_command("catalog", "mlflow-webhook", "--url", "http://127.0.0.1:9/b")
        hooks = [h for h in mlflow.list_webhooks(max_results=100) if h.name == mlflow_sync.WEBHOOK_NAME]
        assert [(h.webhook_id, h.url) for h in hooks] == [(first, "http://127.0.0.1:9/b")]
        assert {str(e) for e in hooks[0].events} >= {"model_version_alias.created", "registered_model.created"}
    finally:
        mlflow.delete_webhook(first)
