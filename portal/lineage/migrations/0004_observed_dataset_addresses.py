"""Observed datasets made before 2026-12-06 are titled by their OpenLineage namespace and name joined by
a slash, as the `openlineage.io/dataset` annotation writes them: `file//data/x.csv`. Since then a new
one is titled by the address people read (`catalog.experiments.dataset_address`): `file:///data/x.csv`.
This retitles the old ones whose title is still the one the ingest gave them (column, descriptor text
and its hash), and moves their `updated_at`, so that the search repair sweep rewrites their documents.

Only a name that starts with a slash reads differently (a path under `file`, `https://host`, …); the
rule is written out here rather than imported, so that this migration keeps doing what it did."""

import hashlib
import json

from django.db import migrations
from django.utils import timezone

OBSERVED_SOURCE = "observed"
BATCH = 1000


def _address(namespace: str, name: str) -> str:
    return f"{namespace}{name}" if "://" in namespace else f"{namespace}://{name}"


def forwards(apps, schema_editor):
    Node = apps.get_model("lineage", "Node")
    Entity = apps.get_model("catalog", "Entity")
    nodes = (Node.objects.filter(type="dataset", name__startswith="/", entity__source=OBSERVED_SOURCE)
             .values_list("entity_id", "namespace", "name").order_by("entity_id"))
    titles = {}
    for entity_id, namespace, name in nodes.iterator(chunk_size=BATCH):
        titles[entity_id] = (f"{namespace}/{name}"[:255], _address(namespace, name)[:255])
    ids = sorted(titles)
    now = timezone.now()
    for start in range(0, len(ids), BATCH):
        changed = []
        for entity in Entity.objects.filter(pk__in=ids[start:start + BATCH]).only("id", "title", "data"):
            old, new = titles[entity.pk]
            if entity.title != old or old == new:
                continue  # retitled by someone (a claim keeps the title), or reads the same
            entity.title = new
            metadata = entity.data.get("metadata") if isinstance(entity.data, dict) else None
            if isinstance(metadata, dict) and metadata.get("title") == old:
                metadata["title"] = new
            text = json.dumps(entity.data, separators=(",", ":"), ensure_ascii=False)
            entity.content_hash = hashlib.sha256(text.encode()).hexdigest()
            entity.updated_at = now
            changed.append(entity)
        Entity.objects.bulk_update(changed, ["title", "data", "content_hash", "updated_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("lineage", "0003_hash_keys_without_like_index"),
        ("catalog", "0013_discovery_scan_files"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
