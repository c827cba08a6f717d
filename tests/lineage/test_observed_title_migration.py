"""lineage 0004: observed datasets titled `file//data/x.csv` (the namespace and name joined as the
`openlineage.io/dataset` annotation joins them, before 2026-12-06) take the address people read,
`file:///data/x.csv`: the column, the descriptor's title and its hash, and `updated_at` (for the search
repair sweep). A title someone changed, and names that read the same either way, are left alone."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("lineage", "0003_hash_keys_without_like_index"), ("lineage", "0004_observed_dataset_addresses")
LONG_AGO = datetime(2026, 11, 1, tzinfo=UTC)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def _observed(apps, name: str, namespace: str, dataset: str, *, title: str | None = None):
    Entity, Node = apps.get_model("catalog", "Entity"), apps.get_model("lineage", "Node")
    old = f"{namespace}/{dataset}"
    data = {"apiVersion": "plinth.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": name, "namespace": "default", "title": title or old,
                         "annotations": {"openlineage.io/dataset": old}},
            "spec": {"type": "file", "lifecycle": "observed", "owner": ""}}
    entity = Entity.objects.create(
        ref=f"dataset:default/{name}", kind="Dataset", kind_key="dataset", namespace="default", name=name,
        name_key=name, api_version="plinth.dev/v1alpha1", title=title or old, lifecycle="observed", data=data,
        source="observed", content_hash=hashlib.sha256(json.dumps(data).encode()).hexdigest())
    type(entity).objects.filter(pk=entity.pk).update(updated_at=LONG_AGO)
    Node.objects.create(type="dataset", namespace=namespace, name=dataset, key=uuid.uuid4().hex * 2, entity=entity)
    return entity.pk


@pytest.mark.django_db(transaction=True)
def test_old_observed_dataset_titles_become_addresses():
    apps = _migrate(BEFORE)
    local = _observed(apps, "local-file", "file", "/data/x.csv")
    web = _observed(apps, "web-file", "https://files.example.com", "/exports/d.csv")
    s3 = _observed(apps, "lake-object", "s3://lake", "raw/orders.parquet")  # reads the same either way
    renamed = _observed(apps, "renamed", "file", "/data/y.csv", title="Customer extract")

    apps = _migrate(AFTER)
    Entity = apps.get_model("catalog", "Entity")
    rows = {e.pk: e for e in Entity.objects.filter(pk__in=[local, web, s3, renamed])}
    assert rows[local].title == rows[local].data["metadata"]["title"] == "file:///data/x.csv"
    assert rows[web].title == rows[web].data["metadata"]["title"] == "https://files.example.com/exports/d.csv"
    text = json.dumps(rows[local].data, separators=(",", ":"), ensure_ascii=False)
    assert rows[local].content_hash == hashlib.sha256(text.encode()).hexdigest()
    assert rows[local].data["metadata"]["annotations"] == {"openlineage.io/dataset": "file//data/x.csv"}
    assert rows[local].updated_at > LONG_AGO and rows[web].updated_at > LONG_AGO
    assert (rows[s3].title, rows[s3].updated_at) == ("s3://lake/raw/orders.parquet", LONG_AGO)
    assert (rows[renamed].title, rows[renamed].updated_at) == ("Customer extract", LONG_AGO)
