"""Onboarding edges of the wizard (issue 15): bad names and names already taken are said on the first
page, live as the name is typed and again on Next; a failed run can be started again with its answers;
the review step shows titles instead of references."""

from __future__ import annotations

import html
import json
import uuid

import pytest

from portal.scaffolder.models import PublishedRepository, Run, RunStatus

from .conftest import ml_values, register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db
WIZARD = "/create/templates/default/ml-model-service/"


@pytest.fixture
def alice(client, org):
    client.force_login(org["users"]["alice"])
    return client


def first_page(client, **fields):
    data = {"_page": 0, "_values": "{}", "_action": "next", "p.modelType": "classifier", "p.owner": "fraud-ml"}
    data.update({f"p.{k}": v for k, v in fields.items()})
    return client.post(WIZARD, data)


def check(client, name, owner="fraud-ml"):
    return html.unescape(client.get(f"{WIZARD}check-name/", {"p.name": name, "p.owner": owner},
                                    HTTP_HX_REQUEST="true").content.decode())


@pytest.mark.parametrize(("name", "message"), [
    ("churn predictor", "it has spaces"),
    ("ChurnPredictor", "it has capital letters"),
    ("x" * 200, "Too long: 200 characters, at most 50 allowed."),
    ("churn--predictor", "a '-' at the start, the end or twice in a row"),
])
def test_bad_names_get_a_clear_message_on_the_first_page(alice, name, message):
    page = html.unescape(first_page(alice, name=name).content.decode())
    assert message in page and 'aria-current="step">About the model' in page  # still on page one
    assert message in check(alice, name)  # and live, as it is typed
    assert not Run.objects.exists()


def test_a_name_the_catalog_has_is_refused_on_the_first_page(alice):
    page = html.unescape(first_page(alice, name="fraud-detector").content.decode())
    assert "The catalog already has a Model named fraud-detector" in page and "Choose another name." in page
    assert 'aria-current="step">About the model' in page
    live = check(alice, "fraud-detector")
    assert "The catalog already has a Model named fraud-detector" in live
    assert "is free" in check(alice, unique("free"))


def test_a_private_entity_of_another_team_is_not_revealed(client, org):
    client.force_login(org["users"]["carol"])  # recsys: cannot see fraud-ml's private chargeback-predictor
    assert "already has" not in check(client, "chargeback-predictor", owner="recsys")


def test_a_failed_run_starts_again_with_its_answers_and_says_why_first(alice, org, scaffolder_root):
    name = unique("svc")
    values = {**ml_values(name), "title": "Churn model"}
    assert run_inline(start(org["users"]["alice"], "ml-model-service", values)).status == RunStatus.SUCCEEDED
    # The same name again (e.g. a second tab, or the API): the run fails at publish, and a plain retry
    # would fail the same way.
    failed = run_inline(start(org["users"]["alice"], "ml-model-service", ml_values(name)))
    assert failed.status == RunStatus.FAILED and "already exists" in failed.error
    run_page = alice.get(failed.get_absolute_url()).content.decode()
    restart = f"{WIZARD}?from-run={failed.uid}"
    assert f'href="{restart}"' in run_page and "Start again with these answers" in run_page
    raw = alice.get(restart).content.decode()
    wizard = html.unescape(raw)
    assert f'value="{name}"' in wizard  # the answers are back
    assert f"A repository fraud-ml/{name} already exists." in wizard  # and why it failed, on page one
    carried = json.loads(html.unescape(raw.split('name="_values" value="', 1)[1].split('"', 1)[0]))
    assert carried["consumesFeatures"] == ["featureset:default/card-transactions-features"]


def test_review_shows_titles_not_references(alice):
    values = ml_values(unique("svc"))
    review = alice.post(WIZARD, {"_page": 2, "_values": json.dumps(values), "_action": "next"}).content.decode()
    section = review.split('data-testid="review"', 1)[1].split("</dl>", 1)[0]
    assert "Card transaction features" in section and "featureset:default/card-transactions-features" not in section


def test_the_api_refuses_a_taken_name_before_running(alice):
    response = alice.post("/api/v1/scaffolder/runs", {"templateRef": "template:default/ml-model-service",
                                                      "values": ml_values("fraud-detector")},
                          content_type="application/json")
    assert response.status_code == 400
    assert "The catalog already has a Model named fraud-detector" in response.json()["error"]["details"]["name"][0]
    assert not Run.objects.exists()


@pytest.mark.parametrize("owner", ["fraud-ml", "o" * 300, "../../etc", ""])
def test_names_the_file_system_cannot_hold_are_checked_without_a_500(alice, org, scaffolder_root, owner):
    """The live name check looks for a published repository before the values are validated: a name or
    owner of 300 characters (ENAMETOOLONG), a path or an empty owner is no repository, not a crash."""
    PublishedRepository.objects.create(owner="fraud-ml", name="ok-name", run_uid=uuid.uuid4(), branch="main",
                                       commit="0" * 40)
    for name in ("n" * 300, "../x", "ok-name"):
        response = alice.get(f"{WIZARD}check-name/", {"p.name": name, "p.owner": owner}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200, (name, owner)
    from portal.scaffolder.selectors import name_clashes

    assert name_clashes(org["users"]["alice"], "n" * 300, owner or None) == []


NUMBER_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Numbers}
spec:
  owner: fraud-ml
  type: test
  parameters:
    - properties:
        ratio: {type: number, minimum: 0, maximum: 1}
        weight: {type: number}
      required: [ratio]
  steps:
    - {id: log, action: debug:log, input: {message: "ratio=${{ parameters.ratio }}"}}
"""


@pytest.mark.parametrize("raw", ["nan", "-nan", "NaN", "inf", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["ratio", "weight"])
def test_a_number_that_is_nan_or_infinite_is_refused_on_the_page(alice, scaffolder_root, tmp_path, raw, field):
    """`float("nan")` passes minimum and maximum, and neither NaN nor infinity is JSON: the run could not be
    stored (a 500 on Create). Refused on the page, with or without bounds, like any other bad number."""
    name = unique("num")
    register_template(tmp_path, NUMBER_TEMPLATE % {"name": name})
    url = f"/create/templates/default/{name}/"
    fields = {"p.ratio": "0.5", "p.weight": "2", f"p.{field}": raw}
    page = html.unescape(alice.post(url, {"_page": 0, "_values": "{}", "_action": "next", **fields}).content.decode())
    assert 'data-testid="review"' not in page and "Must be a finite number (not NaN or infinity)." in page
    for values in (f'{{"ratio": 0.5, "{field}": NaN}}', f'{{"ratio": 0.5, "{field}": Infinity}}'):
        created = alice.post(url, {"_page": "review", "_values": values, "_action": "create"})
        assert created.status_code == 200 and "Must be a finite number" in html.unescape(created.content.decode())
    assert not Run.objects.exists()


def test_the_api_refuses_a_number_that_is_nan_or_infinite(alice, scaffolder_root, tmp_path):
    name = unique("num")
    register_template(tmp_path, NUMBER_TEMPLATE % {"name": name})
    ref = f"template:default/{name}"
    for body in (f'{{"templateRef": "{ref}", "values": {{"ratio": 0.5, "weight": 1e400}}}}',
                 f'{{"templateRef": "{ref}", "values": {{"ratio": 1e999}}}}',
                 f'{{"templateRef": "{ref}", "values": {{"ratio": NaN}}}}',
                 f'{{"templateRef": "{ref}", "values": {{"ratio": 0.5, "extra": [-Infinity]}}}}'):
        response = alice.post("/api/v1/scaffolder/runs", body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    response = alice.post("/api/v1/scaffolder/runs", f'{{"templateRef": "{ref}", "values": {{"ratio": 1e400}}}}',
                          content_type="application/json")
    # refused where the body is read, naming the value's path (portal/core/api.py)
    assert response.json()["error"]["details"]["values.ratio"][0].startswith("Numbers must be finite")
    assert not Run.objects.exists()
    ok = alice.post("/api/v1/scaffolder/runs", {"templateRef": ref, "values": {"ratio": 0.5, "weight": -3.5}},
                    content_type="application/json")
    assert ok.status_code == 201


BAD_SCHEMA_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Bad schema}
spec:
  owner: fraud-ml
  type: test
  parameters:
    - title: About
      properties:
%(props)s
  steps:
    - {id: log, action: debug:log, input: {message: hi}}
"""


@pytest.mark.parametrize(("props", "problem"), [
    ("        name: {type: string, pattern: '['}", "properties/name/pattern: '[' is not a 'regex'"),
    ("        kind: {type: string, enum: 5}", "properties/kind/enum: 5 is not of type 'array'"),
    ("        n: {type: integer, minimum: abc}", "properties/n/minimum: 'abc' is not of type 'number'"),
    ("        n: 5", "properties/n: 5 is not of type 'object', 'boolean'"),
    ("        n: {type: object, properties: [a, b], required: a}", "properties/n/required: 'a' is not of type 'array'"),
    ("        n: {type: array, items: {enum: 3}}", "properties/n/items"),
])
def test_a_parameter_schema_that_is_not_json_schema_makes_the_template_not_runnable(
    org, scaffolder_root, tmp_path, props, problem
):
    """The catalog accepts any mapping as a page: the wizard and the API say the template cannot run,
    naming the problem, instead of a 500 when the values are checked."""
    from django.test import Client

    from catalog.models import Entity
    from portal.scaffolder.templates import from_entity

    name = unique("bad")
    register_template(tmp_path, BAD_SCHEMA_TEMPLATE % {"name": name, "props": props})
    template = from_entity(Entity.objects.get(kind_key="template", name_key=name))
    assert not template.runnable and any(problem in p for p in template.problems), template.problems
    client = Client(raise_request_exception=True)
    client.force_login(org["users"]["alice"])
    url = f"/create/templates/default/{name}/"
    shown = html.unescape(client.get(url).content.decode())
    assert "This template cannot run here" in shown and problem in shown
    for data in ({"_page": 0, "_values": "{}", "_action": "next", "p.name": "x", "p.kind": "5", "p.n": "3"},
                 {"_page": "review", "_values": '{"name": "x", "n": 3}', "_action": "create"}):
        page = html.unescape(client.post(url, data).content.decode())
        assert "This template cannot run here" in page and problem in page
        assert 'data-testid="review"' not in page or "disabled" in page
    api = client.post("/api/v1/scaffolder/runs", {"templateRef": f"template:default/{name}",
                                                  "values": {"name": "x", "n": 3}}, content_type="application/json")
    assert api.status_code == 400 and problem in json.dumps(api.json())
    assert client.get("/create/").status_code == 200
    assert client.get("/api/v1/scaffolder/templates?limit=200").status_code == 200
    assert not Run.objects.exists()
