"""The rule every JSON API body is held to (portal.core.api, "request bodies"): a NUL (`\\u0000`) or a lone
surrogate (`\\ud800`) in any string or key, nested anywhere, is a 400 naming the field's path, and nothing is
written. Before, a lone surrogate in a free-form object (approval `params`) was a 500 (the audit hash could
not encode it; SQLite and psycopg neither), and a descriptor holding one was called valid. The same cases
run on PostgreSQL in test_api_body_rule_postgres.py (a NUL there was the 500)."""

import json

import pytest
from django.test import Client

from catalog.models import Entity
from portal.accounts import services as account_services
from portal.core.models import AuditEvent
from portal.feedback.models import FeedbackItem
from portal.governance.models import ApprovalRequest
from portal.scaffolder.models import Run

pytestmark = pytest.mark.django_db

BAD = "BAD"  # replaced in the JSON text by the escape under test: json.dumps would escape the backslash
ESCAPES = {"nul": ("\\u0000", "Null characters are not allowed."),
           "surrogate": ("\\ud800", "Must be valid Unicode text: it holds a lone surrogate (\\ud800).")}
RUN_VALUES = {"name": "rule-service", "title": "Rule service", "description": "Scores things.",
              "owner": "platform", "modelType": "classifier", "riskTier": 2}

# (url, body with BAD where the escape goes, the path the answer names)
CASES = {
    "governance params": ("/api/v1/approval-requests",
                          {"action": "deprecate", "target": "model:default/fraud-detector",
                           "justification": "Retired.", "params": {"reason": "a" + BAD}},
                          "params.reason"),
    "governance key": ("/api/v1/approval-requests",
                       {"action": "deprecate", "target": "model:default/fraud-detector",
                        "justification": "Retired.", "params": {"k" + BAD: 1}},
                       None),  # the key, escaped: checked below
    "catalog descriptor": ("/api/v1/validate-entity",
                           {"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                                       "metadata": {"name": "svc", "tags": ["a", "b", "c" + BAD]},
                                       "spec": {"type": "service", "lifecycle": "production", "owner": "platform"}}},
                           "entity.metadata.tags[2]"),
    "feedback": ("/api/v1/feedback",
                 {"kind": "entity", "target": "model:default/fraud-detector", "useful": True, "comment": "x" + BAD},
                 "comment"),
    "scaffolder values": ("/api/v1/scaffolder/runs",
                          {"templateRef": "template:default/ml-model-service", "dryRun": True,
                           "values": {**RUN_VALUES, "extra": {"labels": ["x", BAD]}}},
                          "values.extra.labels[1]"),
}


def client_for(user) -> Client:
    _, raw = account_services.token_create(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)


def state() -> tuple:
    return (ApprovalRequest.objects.count(), FeedbackItem.objects.count(), Run.objects.count(),
            Entity.objects.count(), AuditEvent.objects.count())


def refused(client, case: str, escape: str) -> dict:
    """The error of posting CASES[case] with `escape` in place, checking that nothing was written."""
    url, body, _ = CASES[case]
    before = state()
    response = client.post(url, json.dumps(body).replace(BAD, ESCAPES[escape][0]), content_type="application/json")
    assert response.status_code == 400, response.content
    assert state() == before
    return response.json()["error"]


@pytest.fixture
def api(demo_org):
    client = client_for(demo_org["users"]["grace"])
    assert client.get("/api/v1/me").status_code == 200  # the token's first use is audited: not in the counts
    return client


@pytest.mark.parametrize("escape", sorted(ESCAPES))
@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][2]])
def test_a_nul_or_lone_surrogate_anywhere_is_a_400_naming_the_path(api, case, escape):
    path, message = CASES[case][2], ESCAPES[escape][1]
    error = refused(api, case, escape)
    assert error["message"] == f"{path}: {message}", error
    assert error["details"] == {path: [message]}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_a_key_holding_one_is_named_escaped(api, escape):
    """The answer must be writable as UTF-8 itself: the key is shown with the character escaped."""
    error = refused(api, "governance key", escape)
    assert error["message"] == f"params.k{ESCAPES[escape][0]}: {ESCAPES[escape][1]}", error


def test_the_bodies_are_taken_without_the_escape(api):
    """The cases are real requests: without the bad character, each is accepted (so the 400s above are
    the rule's, not some other refusal)."""
    for case, (url, body, path) in CASES.items():
        if path is None:
            continue  # an unknown parameter either way
        response = api.post(url, json.dumps(body).replace(BAD, ""), content_type="application/json")
        assert response.status_code in (200, 201, 202), (case, response.content)


def test_a_surrogate_pair_is_a_character_and_is_taken(api):
    """`\\ud83d\\ude00` is one character (😀), not a lone surrogate."""
    url, body, _ = CASES["governance params"]
    response = api.post(url, json.dumps(body).replace(BAD, "\\ud83d\\ude00"), content_type="application/json")
    assert response.status_code == 201, response.content
    assert ApprovalRequest.objects.get().params["reason"] == "a😀"
