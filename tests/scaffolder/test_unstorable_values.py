"""Values no storage takes are refused by validation, named by their field, in the wizard and the API —
never a 500 (review finding: a lone surrogate "\\ud800" failed the audit hash and the SQLite query; values
nested hundreds or thousands deep made copy.deepcopy and json.loads raise RecursionError)."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from portal.core.models import AuditEvent
from portal.scaffolder import forms
from portal.scaffolder.models import Run

from .conftest import ml_values, register_template, unique

pytestmark = pytest.mark.django_db
WIZARD = "/create/templates/default/ml-model-service/"
API = "/api/v1/scaffolder/runs"
MAX_DEPTH = 32  # forms.MAX_DEPTH, as docs/scaffolder.md gives it
DEEP_MESSAGE = f"nested more than {MAX_DEPTH} levels deep"


@pytest.fixture
def alice(org):
    client = Client(raise_request_exception=False)
    client.force_login(org["users"]["alice"])
    return client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def values_json() -> str:
    """Valid ml-model-service values as JSON text; tests add members written as raw JSON (escapes kept)."""
    return json.dumps(ml_values(unique("s")))


def api_post(client, values_text: str, dry_run: bool = True):
    body = f'{{"templateRef": "ml-model-service", "dryRun": {json.dumps(dry_run)}, "values": {values_text}}}'
    return client.post(API, body, content_type="application/json")


def page_text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize(
    ("member", "field", "message"),
    [
        ('"title": "\\ud800"', "values.title", "Must be valid Unicode text: it holds a lone surrogate (\\ud800)."),
        ('"description": "ok \\udfff ok"', "values.description", "lone surrogate (\\udfff)"),
        ('"extra": ["a", "\\ud83d"]', "values.extra[1]", "lone surrogate (\\ud83d)"),
        ('"extra": {"\\ud800": 1}', "values.extra.\\ud800", "lone surrogate (\\ud800)"),
    ],
)
def test_the_api_refuses_a_lone_surrogate_naming_where(alice, member, field, message):
    before = (Run.objects.count(), AuditEvent.objects.count())
    response = api_post(alice, values_json().removesuffix("}") + ", " + member + "}")
    assert response.status_code == 400, response.content
    assert any(message in m for m in response.json()["error"]["details"][field]), response.json()
    assert (Run.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600])
def test_the_api_refuses_values_nested_too_deep_naming_where(alice, depth):
    response = api_post(alice, values_json().removesuffix("}") + f', "extra": {{"deep": {nested(depth)}}}}}')
    assert response.status_code == 400, response.content
    details = response.json()["error"]["details"]["values"]
    assert any(m.startswith("extra.deep.0.0.…: is " + DEEP_MESSAGE) for m in details), details
    assert not Run.objects.exists()


def test_the_api_takes_values_nested_to_the_limit(alice):
    """MAX_DEPTH lists and objects within a value are fine (the key's own object counts as one)."""
    response = api_post(alice, values_json().removesuffix("}") + f', "extra": {nested(MAX_DEPTH)}}}')
    assert response.status_code == 201, response.content


def test_the_wizard_refuses_a_lone_surrogate_at_its_field(alice):
    """The review's Dry run with a forged `_values`: the field's error, the page written (U+FFFD shown),
    no run."""
    forged = values_json().removesuffix("}") + ', "title": "\\ud800", "k\\udc00": 1}'
    response = alice.post(WIZARD, {"_values": forged, "_page": "review", "_action": "dry-run"})
    assert response.status_code == 200
    page = page_text(response)
    assert "Must be valid Unicode text: it holds a lone surrogate (\\ud800)." in page
    assert "k\\udc00: must be valid Unicode text" in page
    assert 'value="\ufffd"' in page
    assert not Run.objects.exists()


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600])
def test_the_wizard_refuses_deep_values_naming_them(alice, depth):
    response = alice.post(WIZARD, {"_values": f'{{"x": {nested(depth)}}}', "_page": "0", "_action": "next",
                                   "p.name": unique("s"), "p.owner": "fraud-ml", "p.modelType": "classifier"})
    assert response.status_code == 200
    page = page_text(response)
    assert "x.0.0.0.…: is " + DEEP_MESSAGE in page
    carried = json.loads(html.unescape(re.search(r'name="_values" value="([^"]*)"', response.content.decode()).group(1)))
    assert "x" not in carried  # left out of what the page carries on: the next page can go on
    assert not Run.objects.exists()


@pytest.mark.parametrize("action", ["next", "create"])
def test_the_wizard_says_when_its_values_cannot_be_read(alice, action):
    """`_values` nested so deep the JSON decoder gives up: said, nothing kept, nothing started."""
    response = alice.post(WIZARD, {"_values": f'{{"x": {nested(50_000)}}}', "_page": "review", "_action": action})
    assert response.status_code == 200
    page = page_text(response)
    assert f"The form's answers (_values) are nested more than {MAX_DEPTH} levels deep" in page
    assert 'aria-current="step">About the model' in page
    assert not Run.objects.exists()


ARRAY_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Lists}
spec:
  owner: fraud-ml
  type: test
  parameters:
    - properties:
        items: {type: array, title: Items}
  steps:
    - {id: log, action: debug:log, input: {message: hi}}
"""


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 50_000])
def test_a_textarea_with_deep_json_is_refused_at_its_field(org, scaffolder_root, tmp_path, alice, depth):
    entity = register_template(tmp_path, ARRAY_TEMPLATE % {"name": unique("lists")}, user=org["users"]["alice"])
    url = f"/create/templates/default/{entity.name}/"
    response = alice.post(url, {"_values": "{}", "_page": "0", "_action": "next", "p.items": nested(depth)})
    assert response.status_code == 200
    page = page_text(response)
    field = re.findall(r'data-field="items".*?</div>', page, re.DOTALL)[0]
    errors = " ".join(re.findall(r'<small class="error" role="alert">(.*?)</small>', field, re.DOTALL))
    if depth < 1000:
        assert "Is " + DEEP_MESSAGE in errors
    else:  # not JSON the decoder can read: the field says it is not a list, briefly
        assert "is not of type 'array'" in errors and len(errors) < 600
    assert not Run.objects.exists()


def test_unstorable_values_are_found_without_recursion():
    """bad_values and copied walk a value nested far deeper than Python's recursion limit."""
    value: list = []
    for _ in range(50_000):
        value = [value]
    assert forms.MAX_DEPTH == MAX_DEPTH
    assert forms.bad_values({"x": value}) == [("x" + ".0" * MAX_DEPTH, forms.DEEP_PROBLEM)]
    assert forms.copied({"x": value})["x"][0][0] is not value[0][0]
