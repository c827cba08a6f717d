"""The SDK is kept whole: every operation of `/api/schema/` is covered by an SDK call (same method and
path) or excluded here with a reason. A new API operation without either fails this test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from plinth_sdk import _http
from plinth_sdk import resources as _resources  # noqa: F401 (registers the endpoints)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SDK_SCHEMAS = ROOT / "sdk" / "src" / "plinth_sdk" / "schemas"

# operationId: why the SDK does not wrap it. Keep each entry honest and short.
EXCLUDED: dict[str, str] = {
    "v1_webhooks_mlflow_create": "MLflow's own webhook delivery (signed with the webhook secret), called by "
                                 "the MLflow server, never by a user or a CI job",
    "incidents_alertmanager": "Alertmanager's own webhook payload, posted by Alertmanager's webhook_configs with "
                              "a service account's token (docs/operations.md), not by a person or CI job",
    "v1_ping_retrieve": "the authenticated no-op that load tests and `catalog bench --latency` time as the API's "
                        "floor (docs/deployment.md); an SDK user checks a token with `account.me()`",
}


def _operations(client) -> dict[str, tuple[str, str]]:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    return {op["operationId"]: (method.upper(), path) for path, item in schema["paths"].items()
            for method, op in item.items() if method in {"get", "post", "put", "patch", "delete"}}


def test_every_api_operation_is_covered_or_excluded(demo_org):
    from django.test import Client

    from portal.accounts import services as account_services

    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="coverage")
    operations = _operations(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"))
    covered = _http.ENDPOINTS
    missing = sorted(set(operations) - set(covered) - set(EXCLUDED))
    assert not missing, (f"API operations the SDK neither covers nor excludes: {missing}. Add a call in "
                         "sdk/src/plinth_sdk/resources.py (and a CLI command where a user needs one), or an "
                         "EXCLUDED entry with the reason.")
    stale = sorted((set(covered) | set(EXCLUDED)) - set(operations))
    assert not stale, f"SDK endpoints or exclusions for operations the API no longer has: {stale}"
    wrong = {op: (ep.method, ep.path, operations[op]) for op, ep in covered.items()
             if (ep.method, ep.path) != operations[op]}
    assert not wrong, f"SDK endpoints whose method or path differ from the schema: {wrong}"
    assert not set(covered) & set(EXCLUDED), "an operation is both covered and excluded"


def test_the_sdk_ships_the_servers_descriptor_schemas_unchanged():
    """`plinth catalog validate` runs offline on a copy of catalog/schemas (package data); after changing
    a schema or a kind: `python manage.py catalog sdk-schemas`."""
    from catalog.descriptors.kinds import kinds_json
    from catalog.descriptors.validate import SCHEMA_DIR

    server = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*.schema.json")}
    shipped = {p.name: p.read_bytes() for p in SDK_SCHEMAS.glob("*.schema.json")}
    assert shipped == server, "run `python manage.py catalog sdk-schemas`"
    assert (SDK_SCHEMAS / "kinds.json").read_text() == kinds_json(), "run `python manage.py catalog sdk-schemas`"
    assert json.loads(kinds_json())  # the table is JSON the SDK can read


BAD_DOCUMENTS = [
    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\nspec: {type: service, lifecycle: production}\n",
    "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\nspec: {owner: fraud-ml, riskTier: 9}\n",
    "apiVersion: backstage.io/v1alpha1\nkind: Widget\nmetadata: {name: w}\n",
    "apiVersion: backstage.io/v9\nkind: Component\nmetadata: {name: c}\nspec: {}\n",
    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: c}\nspec: {type: service, lifecycle: production, owner: x}\nextra: 1\n",
]


@pytest.mark.parametrize("text", BAD_DOCUMENTS)
def test_offline_validation_finds_what_the_server_finds(text):
    """Every field the offline check flags, the server flags too (the server checks more: references,
    names, ownership)."""
    from plinth_sdk.validate import validate_text

    from catalog.descriptors.loader import load_documents
    from catalog.descriptors.validate import validate_entity

    docs, errors = load_documents(text, "x.yaml", max_bytes=1 << 20)
    for doc in docs:
        errors.extend(validate_entity(doc))
    offline = validate_text(text, "x.yaml")
    assert offline.problems and errors
    assert {p.field for p in offline.problems} <= {e.field for e in errors}


def test_offline_validation_passes_the_demo_catalog():
    from plinth_sdk.validate import validate_file

    files = sorted((ROOT / "catalog" / "demo").rglob("catalog-info.yaml")) + [ROOT / "sdk" / "catalog-info.yaml"]
    results = [validate_file(str(f)) for f in files]
    assert [str(p) for r in results for p in r.problems] == []
    assert sum(r.documents for r in results) > 20
