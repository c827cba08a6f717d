"""Property-based bad input for template parameters, against the shipped templates' JSON Schemas, through
`POST /api/v1/scaffolder/runs` and the wizard (CSRF enforced). Every example: a 201/redirect for values the
schema accepts, otherwise a 400 (API) or the form again (wizard) naming the field; a refused run stores
nothing; no secret is ever stored; never a 5xx (tests/hostile.py, docs/security.md)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from portal.accounts import services as account_services
from portal.core.models import AuditEvent
from portal.scaffolder import forms
from portal.scaffolder.models import Run, RunLog, RunStep
from portal.scaffolder.templates import from_entity
from tests import hostile
from tests.hostile import each_backend  # noqa: F401 (a fixture)

from .conftest import BUILTIN, template_entity

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("each_backend")]

WRITTEN = (Run, RunStep, RunLog, AuditEvent)
SECRET = "s3cr3t-token-9f2c"  # a value that must never be stored anywhere
# Values each shipped template accepts (demo catalog entities and alice's team).
VALID = {
    "ml-model-service": {"name": "churn-model", "owner": "fraud-ml", "modelType": "classifier", "riskTier": 2,
                         "consumesFeatures": ["featureset:default/card-transactions-features"],
                         "trainedOn": ["dataset:default/card-transactions-2025"], "port": 8080, "includeDocs": True,
                         "mlflowToken": SECRET},
    "feature-set": {"name": "orders-features", "owner": "fraud-ml", "entityName": "customer", "joinKey": "customer_id",
                    "features": "orders_7d:INT64", "ttl": "24h"},
    "training-pipeline": {"name": "churn-training", "owner": "fraud-ml", "schedule": "0 3 * * 1",
                          "orchestrator": "airflow", "inputs": ["dataset:default/card-transactions-2025"],
                          "outputName": "churn-scores"},
}
PROPERTIES = {
    name: {key: prop for page in yaml.safe_load((BUILTIN / name / "template.yaml").read_text())["spec"]["parameters"]
           for key, prop in (page.get("properties") or {}).items()}
    for name in VALID
}
TRAVERSAL = st.sampled_from(["../../etc", "..", "/etc/passwd", "a/../../b", "..\\..\\x", "%2e%2e%2f", "./x", "a/b",
                             "~root", "x\x00y", "-rf", "--help", "CON", ".git", "name\nowner: other"])
WRONG_TYPE = {
    "string": st.one_of(st.integers(), st.booleans(), st.none(), st.lists(st.text(max_size=3), max_size=2),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    "integer": st.one_of(st.text(max_size=5), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                         st.sampled_from([2**70, -1, 0, 4, 70000]), st.none()),
    "boolean": st.one_of(st.sampled_from(["true", "on", 1, 0, "false"]), st.none()),
    "array": st.one_of(st.text(max_size=10), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
                       st.lists(st.one_of(st.integers(), st.none(), hostile.BAD_REFS), max_size=3)),
}


@st.composite
def template_values(draw, template: str) -> dict:
    """The template's valid values (with a secret where the template has a secret field), then per drawn
    property: a value of the wrong type, a hostile string, a path-traversing name; a missing required
    one; extra keys."""
    values = json.loads(json.dumps(VALID[template]))
    props = PROPERTIES[template]
    for key in draw(st.lists(st.sampled_from(sorted(props)), max_size=3, unique=True)):
        kind = props[key].get("type", "string")
        values[key] = draw(st.one_of(WRONG_TYPE.get(kind, hostile.HOSTILE_VALUES), hostile.HOSTILE_STRINGS, TRAVERSAL))
    if draw(st.booleans()):
        values.pop(draw(st.sampled_from(sorted(values))), None)
    if draw(st.integers(0, 3)) == 0:
        values.update(draw(st.dictionaries(st.one_of(hostile.LOADED_STRINGS, st.sampled_from(
            ["__proto__", "constructor", "ui:field", "values", "secrets", "mlflowToken.x"])), hostile.HOSTILE_VALUES,
            min_size=1, max_size=2)))
    return values


TEMPLATES = st.sampled_from(sorted(VALID))


@pytest.fixture
def alice(org, scaffolder_root, monkeypatch):
    # A created run is queued after commit; in these transaction-wrapped tests nothing commits, and
    # nothing may reach a broker either.
    monkeypatch.setattr("portal.scaffolder.services.enqueue", lambda run: None)
    return org["users"]["alice"]


@pytest.fixture
def api(alice):
    _, raw = account_services.token_create(user=alice, name="bad-input")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.get("/api/v1/scaffolder/templates")  # the token's first use is audited now, not in an example
    return client


@pytest.fixture
def browser(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client




def schema_errors(template: str, values: dict, user) -> dict:
    """What the template's pages say of `values` (the oracle: a run must exist exactly when this is empty)."""
    pages = forms.pages(from_entity(template_entity(template)), user)
    merged = forms.with_defaults(pages, values)
    return {k: v for page in pages for k, v in forms.validate_page(page, merged).items()}


def has_nul(node) -> bool:
    if isinstance(node, dict):
        return any(has_nul(k) or has_nul(v) for k, v in node.items())
    if isinstance(node, list):
        return any(has_nul(v) for v in node)
    return isinstance(node, str) and "\x00" in node


def assert_no_secret_stored() -> None:
    for model, fields in ((Run, ("parameters", "output", "error")), (RunLog, ("message",)), (RunStep, ("message",)),
                          (AuditEvent, ("payload", "target", "action"))):
        for row in model.objects.values_list(*fields):
            assert SECRET not in json.dumps(row, default=str), f"the secret was stored in {model.__name__}"


@hostile.budget(ci=40)
@given(template=TEMPLATES, data=st.data(), dry_run=st.booleans())
def test_the_runs_api_accepts_exactly_what_the_schema_accepts(api, alice, template, data, dry_run):
    values = data.draw(template_values(template))
    expected = schema_errors(template, values, alice)
    with hostile.rolled_back():
        before = hostile.digest(*WRITTEN)
        response = api.post("/api/v1/scaffolder/runs", {"templateRef": f"template:default/{template}",
                                                        "values": values, "dryRun": dry_run},
                            content_type="application/json")
        hostile.assert_clear(response, names=[*PROPERTIES[template], "values"])
        if hostile.too_large(response):
            assert hostile.digest(*WRITTEN) == before
        elif has_nul(values):  # refused by the API's parser (portal.core.api)
            assert response.status_code == 400 and "Null characters" in response.json()["error"]["message"]
            assert hostile.digest(*WRITTEN) == before
        elif expected:
            assert response.status_code == 400, (expected, response.content)
            assert set(response.json()["error"]["details"]) >= {k or "values" for k in expected}
            assert hostile.digest(*WRITTEN) == before, "a refused run stored something"
        else:
            assert response.status_code == 201, response.content
            assert Run.objects.count() == 1
        assert_no_secret_stored()


@hostile.budget(ci=20)
@given(body=st.one_of(
    hostile.HOSTILE_VALUES,
    st.fixed_dictionaries({"templateRef": st.one_of(hostile.BAD_REFS, hostile.HOSTILE_VALUES, TRAVERSAL)}),
    st.fixed_dictionaries({"templateRef": st.just("template:default/ml-model-service"), "values": hostile.HOSTILE_VALUES}),
))
def test_the_runs_api_answers_any_body_clearly(api, body):
    before = hostile.digest(*WRITTEN)
    response = api.post("/api/v1/scaffolder/runs", json.dumps(body), content_type="application/json")
    hostile.assert_clear(response, names=["template", "values", "owner", "name", "body", "No data provided",
                                          "Expected a dictionary", "Null characters"])
    assert response.status_code in (400, 404) or hostile.too_large(response), response.content
    assert hostile.digest(*WRITTEN) == before


def _csrf(client, template: str) -> str:
    page = client.get(f"/create/templates/default/{template}/")
    assert page.status_code == 200
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


@hostile.budget(ci=20)
@given(template=TEMPLATES, data=st.data(), action=st.sampled_from(["create", "dry-run"]))
def test_the_wizard_starts_a_run_only_for_valid_values(browser, alice, template, data, action):
    values = data.draw(template_values(template))
    expected = schema_errors(template, values, alice)
    token = _csrf(browser, template)
    with hostile.rolled_back():
        before = hostile.digest(*WRITTEN)
        response = browser.post(f"/create/templates/default/{template}/", {
            "_page": "review", "_action": action, "_values": json.dumps(values), "csrfmiddlewaretoken": token})
        hostile.assert_clear(response)
        if hostile.too_large(response):
            assert hostile.digest(*WRITTEN) == before
        elif expected:
            assert response.status_code == 200, response.status_code
            assert "Some values are not valid" in response.content.decode()
            assert hostile.digest(*WRITTEN) == before
        else:
            assert response.status_code == 302 and Run.objects.count() == 1
        assert_no_secret_stored()


@hostile.budget(ci=15)
@given(template=TEMPLATES, page=st.integers(-2, 4), fields=st.dictionaries(
    st.one_of(st.sampled_from(["name", "owner", "riskTier", "port", "inputs", "features", "mlflowToken", "_values",
                               "_page", "_action", "includeDocs"]), st.text(max_size=10)),
    st.one_of(hostile.HOSTILE_STRINGS, TRAVERSAL),
    max_size=6))
def test_any_wizard_page_post_renders_without_writing(browser, template, page, fields):
    """A page's fields filled with anything (and the wizard's own hidden fields forged): the form again
    or the next page — or, for a NUL, which no browser sends, the 400 naming the field that every page
    form gets — never a 5xx, never a run (no `create` action is sent)."""
    token = _csrf(browser, template)
    fields = {**fields, "_page": fields.get("_page", str(page)), "csrfmiddlewaretoken": token}
    fields["_action"] = "next" if fields.get("_action") in ("create", "dry-run") else fields.get("_action", "next")
    before = hostile.digest(*WRITTEN)
    response = browser.post(f"/create/templates/default/{template}/", fields)
    hostile.assert_clear(response)
    assert response.status_code == 200 or hostile.too_large(response) or hostile.nul_refused(response, fields)
    assert hostile.digest(*WRITTEN) == before


def test_the_wizard_refuses_a_post_without_its_csrf_token(browser):
    before = hostile.digest(*WRITTEN)
    response = browser.post("/create/templates/default/ml-model-service/", {
        "_page": "review", "_action": "create", "_values": json.dumps(VALID["ml-model-service"])})
    assert response.status_code == 403
    assert hostile.digest(*WRITTEN) == before
