"""A correctly signed MLflow delivery that is malformed is refused with its status and a message, never
a 500: a body nested thousands deep (the JSON decoder recurses once per level) is a 400 like any body
that is not JSON, and an `X-MLflow-Timestamp` that is not a short run of digits is a 401 before `int`
(which refuses 4,300+ digits). No MLflow server is needed: nothing here reaches it."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import Client

from catalog.mlflow_webhooks import sign
from catalog.models import MlflowWebhookDelivery

pytestmark = pytest.mark.django_db
SECRET = "whsec-bad-input"
URL = "/api/v1/webhooks/mlflow"


@pytest.fixture
def post(settings):
    settings.PLINTH_MLFLOW_WEBHOOK_SECRET = SECRET
    http = Client(raise_request_exception=False)

    def send(body: bytes, stamp: str | None = None):
        delivery_id, stamp = str(uuid.uuid4()), stamp or str(int(time.time()))
        return http.post(URL, data=body, content_type="application/json", HTTP_X_MLFLOW_DELIVERY_ID=delivery_id,
                         HTTP_X_MLFLOW_TIMESTAMP=stamp, HTTP_X_MLFLOW_SIGNATURE=sign(SECRET, delivery_id, stamp, body))

    return send


@pytest.mark.parametrize("body", [
    b"[" * 40000,
    b'{"entity": "registered_model", "action": "created", "data": ' + b"[" * 30000 + b"}",
    b'{"entity": "registered_model", "action": "created", "data": {"name": ' + b'{"a":' * 10000 + b"}",
])
def test_a_body_nested_too_deeply_is_400(post, body):
    response = post(body)
    assert response.status_code == 400, response.content[:200]
    message = response.json()["error"]["message"]
    assert message.startswith("the body is not JSON") and "nested too deeply" in message
    assert not MlflowWebhookDelivery.objects.exists()


@pytest.mark.parametrize("stamp", ["9" * 5000, "9" * 13, "1" * 4301])
def test_a_timestamp_that_is_no_short_run_of_digits_is_401(post, stamp):
    response = post(b'{"entity": "registered_model", "action": "created", "data": {"name": "m"}}', stamp=stamp)
    assert response.status_code == 401, response.content[:200]
    message = response.json()["error"]["message"]
    assert "X-MLflow-Timestamp must be Unix seconds (at most 12 digits)" in message
    assert len(message) < 200  # the header is quoted cut short, not whole


def test_a_well_formed_delivery_still_gets_past_the_checks(post):
    """The checks refuse only what they should: today's timestamp and a shallow body reach the event
    check (an event Plinth does not handle is a 400 naming it)."""
    response = post(b'{"entity": "prompt", "action": "created", "data": {"name": "m"}}')
    assert response.status_code == 400
    assert "is not one Plinth handles" in response.json()["error"]["message"]
