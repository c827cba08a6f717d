"""The REST API validates like the form, and runs are private to whom they belong."""

import pytest

from portal.scaffolder.models import Run

from .conftest import ml_values, run_inline, unique

pytestmark = pytest.mark.django_db


def test_list_create_and_read_a_run(client, org, scaffolder_root):
    client.force_login(org["users"]["alice"])
    items = client.get("/api/v1/scaffolder/templates").json()["items"]
    assert {"template:default/ml-model-service", "template:default/feature-set"} <= {i["ref"] for i in items}
    bad = client.post(
        "/api/v1/scaffolder/runs",
        {
            "templateRef": "template:default/ml-model-service",
            "values": {"name": "Bad Name", "owner": "recsys"},
        },
        content_type="application/json",
    )
    assert bad.status_code == 400 and {"name", "owner"} <= set(bad.json()["error"]["details"])
    assert Run.objects.count() == 0
    created = client.post(
        "/api/v1/scaffolder/runs",
        {
            "templateRef": "template:default/ml-model-service",
            "values": ml_values(unique("api")),
            "dryRun": True,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    run_inline(Run.objects.get(uid=created.json()["id"]))
    body = client.get(f"/api/v1/scaffolder/runs/{created.json()['id']}").json()
    assert body["status"] == "succeeded" and any(f["path"] == "catalog-info.yaml" for f in body["files"])
    client.force_login(org["users"]["dan"])
    assert client.get(f"/api/v1/scaffolder/runs/{created.json()['id']}").status_code == 404
