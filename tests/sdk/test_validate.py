"""Offline validation (`plinth_sdk.validate`, `plinth catalog validate`) agrees with the server's
validate endpoint on everything a descriptor decides by itself: YAML as the server reads it, the
envelope, the metadata rules, the kind's schema and its extra checks — the same problems (line, field,
message) for each descriptor below, asked of the live server over HTTP."""

from __future__ import annotations

import pytest
from plinth_sdk import Client
from plinth_sdk.validate import validate_text

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "apiVersion: plinth.dev/v1alpha1\nkind: Model\n{meta}spec:\n  type: classifier\n  lifecycle: experimental\n" \
        "  owner: fraud-ml\n"


def model(meta: str) -> str:
    return MODEL.format(meta=meta)


DESCRIPTORS = {
    "valid": model("metadata:\n  name: fine-model\n  title: Fine\n"),
    "no metadata": model(""),
    "metadata not a mapping": model("metadata: [a]\n"),
    "no name": model("metadata:\n  title: x\n"),
    "bad name": model('metadata:\n  name: "Bad Name!!"\n'),
    "long name": model(f"metadata:\n  name: {'a' * 64}\n"),
    "non-ascii name": model("metadata:\n  name: mоdel\n"),  # a Cyrillic о
    "name not a string": model("metadata:\n  name: 5\n"),
    "name yes/no stays a string": model("metadata:\n  name: no\n"),
    "title not a string": model("metadata:\n  name: x\n  title: 5\n"),
    "description too long": model(f"metadata:\n  name: x\n  description: {'d' * 10_001}\n"),
    "date title stays a string": model("metadata:\n  name: x\n  title: 2024-01-01\n"),
    "bad namespace": model("metadata:\n  name: x\n  namespace: Team_A\n"),
    "server-set fields": "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: x, uid: u, etag: e}\n"
                         "spec: {type: classifier, lifecycle: experimental, owner: fraud-ml}\nstatus: {}\n",
    "labels and annotations": model("metadata:\n  name: x\n  labels:\n    Bad/key: v\n    ok: 'not ok!'\n"
                                    "  annotations:\n    example.com/n: 5\n    'x y': z\n"),
    "tags": model("metadata:\n  name: x\n  tags: [ok, Not-Ok, 'a--b', 7]\n"),
    "tags not a list": model("metadata:\n  name: x\n  tags: ml\n"),
    "links": model("metadata:\n  name: x\n  links:\n    - url: javascript:alert(1)\n    - url: https://\n"
                   "    - {url: 'https://ok.example', title: 3}\n    - just-text\n"),
    "unknown kind with a hint": "apiVersion: plinth.dev/v1alpha1\nkind: model\nmetadata: {name: x}\n",
    "kind not a string": "apiVersion: plinth.dev/v1alpha1\nkind: 5\nmetadata: {name: x}\n",
    "wrong apiVersion": "apiVersion: backstage.io/v9\nkind: Component\nmetadata: {name: '!'}\n",
    "schema errors": "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: x}\n"
                     "spec: {owner: fraud-ml, type: '', riskTier: 9, mlflow: {other: 1}, dependsOn: 5}\n",
    "model extras": model("metadata:\n  name: x\n  annotations: {mlflow.org/registered-model: a}\n")
                    + "  mlflow: {registeredModel: b}\n  modelCard: ../card.md\n",
    "pipeline cron": "apiVersion: plinth.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: p}\n"
                     "spec: {type: training, lifecycle: production, owner: fraud-ml, schedule: 'every day'}\n",
    "duplicate key": model("metadata:\n  name: x\n  name: y\n"),
    "binary tag": model("metadata:\n  name: !!binary aGVsbG8=\n"),
    "nan": model("metadata:\n  name: x\n  labels: {a: .nan}\n"),
    "NUL character": model('metadata:\n  name: x\n  title: "a\\0b"\n'),
    "two documents": model("metadata: {name: a}\n") + "---\n" + model("metadata: {name: 'b c'}\n"),
}


def _known_kinds_sorted(message: str) -> str:
    """The SDK's kind table is sorted by name, the server's in its own order: the same kinds."""
    head, sep, listed = message.partition("(known kinds: ")
    return head + sep + ", ".join(sorted(listed.rstrip(")").split(", "))) + ")" if sep else message


def _problems(problems) -> list[tuple]:
    return sorted((p.line, p.field or "", _known_kinds_sorted(p.message)) for p in problems)


def _offline(text: str) -> list[tuple]:
    return _problems(validate_text(text, "request.yaml").problems)


@pytest.fixture
def server_validate(portal):
    with Client(portal.url, portal.token("alice")) as client:
        yield lambda text: _problems(client.validation.validate(yaml=text).errors)


def test_offline_and_the_server_find_the_same_problems(server_validate):
    disagree = {}
    for name, text in DESCRIPTORS.items():
        offline, server = _offline(text), server_validate(text)
        if offline != server:
            disagree[name] = {"offline": offline, "server": server}
    assert not disagree, disagree
    assert _offline(DESCRIPTORS["valid"]) == [] and all(_offline(t) for n, t in DESCRIPTORS.items()
                                                         if "stays a string" not in n and n != "valid")
