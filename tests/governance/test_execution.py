"""Execution against the real MLflow server: the alias moves, the version is tagged with the request id,
failures retry and end in a visible, retryable state."""

from __future__ import annotations

import pytest

from portal.core.models import AuditEvent
from portal.governance import services
from portal.governance.models import ApprovalRequest, State
from portal.governance.tasks import execute_request

pytestmark = pytest.mark.django_db

PROMOTE = {
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
}


def approved(users, run_outbox):
    req = services.request_create(actor=users["alice"], **PROMOTE)
    run_outbox()
    services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve")
    return req


def test_execution_moves_the_alias_and_tags_the_version(mlflow_fraud, users, run_outbox):
    req = approved(users, run_outbox)
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.EXECUTED, req.last_error
    assert mlflow_fraud.get_model_version_by_alias("fraud-detector", "champion").version == "3"
    assert mlflow_fraud.get_model_version("fraud-detector", "3").tags["plinth.approval_request"] == str(
        req.pk
    )
    assert req.change["result"]["alias_changed"] is True and req.change["result"]["from"] == "2"
    # v3 was @challenger: having become @champion it no longer is (governance.md, "Aliases on promotion").
    assert req.change["result"]["dropped"] == ["challenger"]
    assert mlflow_fraud.get_registered_model("fraud-detector").aliases == {"champion": "3"}
    # Running the task again (a redelivery) changes nothing and writes nothing.
    events = AuditEvent.objects.count()
    assert execute_request(req.pk) is None
    assert AuditEvent.objects.count() == events
    assert (
        AuditEvent.objects.filter(target=req.audit_target, action="governance.request.execute").count() == 1
    )


def test_mlflow_down_ends_in_retryable_execution_failed(
    mlflow_fraud, users, run_outbox, settings, mlflow_url
):
    req = approved(users, run_outbox)
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # nothing listens there
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.EXECUTION_FAILED and req.last_error
    event = AuditEvent.objects.filter(target=req.audit_target, action="governance.request.execute").get()
    assert '"outcome":"failure"' in event.payload
    settings.MLFLOW_TRACKING_URI = mlflow_url
    services.request_retry_execution(actor=users["alice"], request_id=req.pk)
    run_outbox()
    assert ApprovalRequest.objects.get(pk=req.pk).state == State.EXECUTED
    assert mlflow_fraud.get_model_version_by_alias("fraud-detector", "champion").version == "3"
