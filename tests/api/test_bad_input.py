"""What the API fuzz run found, pinned one by one: each input answers a 4xx that names the failing field,
changes nothing, and is never a 500 (the fuzz run itself is tests/api/test_fuzz.py)."""

import os

import pytest
from django.test import Client

from catalog.models import Location
from portal.accounts import services as account_services
from portal.governance import services as governance_services
from portal.governance.models import ApprovalRequest, State
from portal.governance.tasks import evaluate_gates
from portal.scaffolder.models import Run

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    _, raw = account_services.token_create(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)


@pytest.fixture
def api(demo_org):
    return client_for(demo_org["users"]["grace"])


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_a_location_path_too_long_for_the_file_system_is_a_400(api, tmp_path, settings):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    before = Location.objects.count()
    error = error_of(api.post("/api/v1/locations", {"target": str(tmp_path / ("x" * 300))},
                              content_type="application/json"), 400)
    assert "target" in str(error)
    assert Location.objects.count() == before


def test_a_path_outside_the_roots_does_not_tell_whether_it_exists(api, tmp_path, settings):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path / "roots")]
    existing = tmp_path / "elsewhere.yaml"
    existing.write_text("kind: Component\n")
    answers = [api.post("/api/v1/locations", {"target": str(path)}, content_type="application/json")
               for path in (existing, tmp_path / "missing.yaml")]
    details = [error_of(answer, 400)["details"]["target"] for answer in answers]
    assert all("outside the folders" in str(d) for d in details), details


@pytest.mark.parametrize("url", ["/api/v1/refresh", "/api/v1/scaffolder/runs", "/api/v1/locations",
                                 "/api/v1/approval-requests", "/api/v1/approval-requests/1/comments"])
def test_a_body_that_is_not_an_object_is_a_400(api, url):
    error = error_of(api.post(url, [None, None], content_type="application/json"), 400)
    assert "Expected a dictionary" in error["message"]


def test_dry_run_false_as_a_string_starts_a_real_run(api):
    """`bool("false")` made it a dry run; the body is now read by a serializer."""
    values = {"name": "fuzz-service", "title": "Fuzz service", "description": "Scores things.", "owner": "platform",
              "modelType": "classifier", "riskTier": 2}
    response = api.post("/api/v1/scaffolder/runs", {"templateRef": "template:default/ml-model-service",
                                                    "values": values, "dryRun": "false"},
                        content_type="application/json")
    assert response.status_code == 201, response.content
    assert Run.objects.get(uid=response.json()["id"]).dry_run is False


@pytest.mark.parametrize("params,field", [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-01"}, "until"),
    ({"after": "x"}, "after"),
])
def test_audit_filters_are_validated(api, params, field):
    error = error_of(api.get("/api/v1/audit-events", params), 400)
    assert set(error["details"]) == {field}


def test_audit_since_takes_a_date_or_a_date_and_time(api):
    for since in ("2020-01-01", "2020-01-01T09:30", "2020-01-01T09:30:00+02:00"):
        assert api.get("/api/v1/audit-events", {"since": since}).status_code == 200


@pytest.mark.parametrize("url", [
    "/api/v1/search?q=a%00b",
    "/api/v1/entities?filter=kind=a%00",
    "/api/v1/audit-events?actor=%00",
    "/api/v1/approval-requests?state=%00",
    "/api/v1/scaffolder/templates?type=%00",
    "/api/v1/techdocs/sites/component/default/plinth/page?path=%00",
])
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(api, url):
    name = url.split("?")[1].split("=")[0]
    assert f"{name}" in error_of(api.get(url), 400)["message"]


def test_a_nul_in_the_path_is_a_400(api):
    assert "path" in error_of(api.get("/api/v1/entities/by-name/model/default/a%00b"), 400)["message"].lower()


def test_a_nul_in_a_page_query_is_a_400_page(demo_org, client):
    client.force_login(demo_org["users"]["alice"])
    response = client.get("/search/?q=%00")
    assert response.status_code == 400 and b"NUL" in response.content.upper()


@pytest.mark.parametrize("body,field", [
    ({"action": "deprecate", "target": "model:default/fraud-detector", "params": {"reason": "a\x00"}},
     "params.reason"),
    ({"action": "deprecate", "target": "model:default/fraud-detector", "params": {"list": [1, "\x00"]}},
     "params.list"),
])
def test_a_nul_in_a_json_body_is_a_400_naming_the_field(api, body, field):
    assert field in error_of(api.post("/api/v1/approval-requests", body, content_type="application/json"),
                             400)["message"]
    assert not ApprovalRequest.objects.exists()


def test_a_nul_in_a_form_body_is_a_400_naming_the_field(api):
    response = api.post("/api/v1/approval-requests", "action=deprecate&target=x&justification=a%00",
                        content_type="application/x-www-form-urlencoded")
    assert "justification" in error_of(response, 400)["message"]


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded; charset=punycode",  # a codec whose decoder fails its own way
    "application/x-www-form-urlencoded; charset=hex",  # not a text codec
    "multipart/form-data; boundary=zz; charset=idna",
])
def test_a_body_in_a_charset_that_cannot_be_read_is_a_400_and_writes_nothing(api, content_type):
    from portal.accounts.models import APIToken

    before = APIToken.objects.count()
    body = (b"--zz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nabc\r\n--zz--\r\n"
            if content_type.startswith("multipart") else b"name=abc")
    response = api.generic("POST", "/api/v1/tokens", body, content_type=content_type)
    assert "cannot be read as" in error_of(response, 400)["message"]
    assert APIToken.objects.count() == before


def test_invalid_utf8_in_a_form_body_is_refused_not_stored_garbled(api):
    from portal.accounts.models import APIToken

    response = api.generic("POST", "/api/v1/tokens", b"name=caf\xc3", content_type="application/x-www-form-urlencoded")
    assert '"utf-8"' in error_of(response, 400)["message"]
    assert not APIToken.objects.filter(name__startswith="caf").exists()
    fine = api.generic("POST", "/api/v1/tokens", "name=café".encode(), content_type="application/x-www-form-urlencoded")
    assert fine.status_code == 201 and APIToken.objects.filter(name="café").exists()


@pytest.mark.prod_smoke
def test_decisions_withdraw_and_retry_work_on_postgresql(demo_org):
    """They locked the request with its entity outer-joined: PostgreSQL refused (500 on every call)."""
    from django.db import connection

    if not os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is not set; `make test` runs this subset against PostgreSQL")
    assert connection.vendor == "postgresql"
    users = demo_org["users"]
    decided, withdrawn = (
        governance_services.request_create(actor=users["alice"], action="deprecate", target=target, params={})
        for target in ("model:default/chargeback-predictor", "model:default/fraud-detector")
    )
    for req in (decided, withdrawn):
        evaluate_gates(req.pk)
        assert ApprovalRequest.objects.get(pk=req.pk).state == State.IN_REVIEW
    frank, alice = client_for(users["frank"]), client_for(users["alice"])
    vote = frank.post(f"/api/v1/approval-requests/{decided.pk}/decisions",
                      {"decision": "request-changes", "comment": "Name the successor."}, content_type="application/json")
    assert vote.status_code == 201 and vote.json()["state"] == State.CHANGES_REQUESTED
    response = alice.post(f"/api/v1/approval-requests/{withdrawn.pk}/withdraw")
    assert response.status_code == 200 and response.json()["state"] == State.WITHDRAWN
    assert error_of(alice.post(f"/api/v1/approval-requests/{decided.pk}/retry"), 409)["state"] == "changes-requested"
