"""What the catalog contributes to the portal's search: one document per entity, with the
kind-specific text (feature names, dataset columns, model metric names…) in its body.
Imported by portal.search at startup; keeps the index fresh from `entities_changed`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.urls import reverse

from portal.search import index, registry
from portal.search.registry import Document

from .models import Entity, ModelVersion, Star
from .signals import entities_changed

COLUMNS = (
    "id",
    "ref",
    "kind",
    "kind_key",
    "namespace",
    "name",
    "title",
    "description",
    "spec_type",
    "lifecycle",
    "owner_ref",
    "owner_team_id",
    "visibility",
    "tags",
    "data",
)
CHUNK = 2000
logger = logging.getLogger(__name__)


def _names(items, key: str = "name") -> list[str]:
    return [str(item.get(key)) for item in items or [] if isinstance(item, dict) and item.get(key)]


def body_text(kind_key: str, spec: dict, metadata: dict, metrics: Iterable[str] = ()) -> str:
    """The words of a descriptor that are worth finding besides its name and description."""
    parts: list[str] = []
    if kind_key == "featureset":
        parts += _names(spec.get("features")) + _names(spec.get("entities"))
    elif kind_key == "dataset":
        schema = spec.get("schema") or {}
        parts += _names(schema.get("columns") if isinstance(schema, dict) else None)
        parts.append(str(spec.get("classification") or ""))
    elif kind_key == "model":
        parts += list(metrics)
    for key in ("system", "domain", "orchestrator", "schedule"):
        value = spec.get(key)
        if isinstance(value, str):
            parts.append(value.split("/")[-1].split(":")[-1])
    return " ".join(p for p in parts if p)[:20000]


class CatalogSource(registry.SearchSource):
    name = "catalog"

    def _rows(self, keys: Iterable[str] | None) -> Iterator[tuple]:
        qs: QuerySet = Entity.objects.order_by("id")
        if keys is not None:
            keys = list(keys)
            for start in range(0, len(keys), CHUNK):
                yield from qs.filter(ref__in=keys[start : start + CHUNK]).values_list(*COLUMNS)
            return
        last = 0
        while True:  # keyset pagination: a constant memory footprint at any catalog size
            batch = list(qs.filter(id__gt=last).values_list(*COLUMNS)[:CHUNK])
            if not batch:
                return
            yield from batch
            last = batch[-1][0]

    def documents(self, keys: Iterable[str] | None = None) -> Iterator[Document]:
        metrics: dict[int, set[str]] = defaultdict(set)
        versions = (
            ModelVersion.objects.all()
            if keys is None
            else ModelVersion.objects.filter(entity__ref__in=list(keys or []))
        )
        for entity_id, values in versions.values_list("entity_id", "metrics"):
            metrics[entity_id].update(values or {})
        base = reverse("catalog:entity-detail", args=["k", "n", "x"]).rsplit("k/n/x", 1)[0]
        for (
            pk,
            ref,
            kind,
            kind_key,
            namespace,
            name,
            title,
            description,
            spec_type,
            lifecycle,
            owner_ref,
            owner_team_id,
            visibility,
            tags,
            data,
        ) in self._rows(keys):
            spec = (data or {}).get("spec") or {}
            yield Document(
                key=ref,
                kind=kind_key,
                kind_label=kind,
                name=name,
                title=title,
                description=description,
                body=body_text(
                    kind_key,
                    spec if isinstance(spec, dict) else {},
                    (data or {}).get("metadata") or {},
                    sorted(metrics.get(pk, ())),
                ),
                owner=owner_ref.split("/")[-1].split(":")[-1] if owner_ref else "",
                lifecycle=lifecycle,
                type=spec_type,
                tags=list(tags or []),
                visibility=visibility,
                owner_team_id=owner_team_id,
                url=f"{base}{kind_key}/{namespace}/{name}/",
            )

    def boosted_keys(self, user) -> set[str]:
        if not (user and user.is_authenticated):
            return set()
        return set(Star.objects.filter(user=user).values_list("entity__ref", flat=True)[:200])


registry.register(CatalogSource())


def _on_entities_changed(sender, changed=(), removed=(), **kwargs) -> None:
    try:
        index.update(CatalogSource.name, changed=changed, removed=removed)
    except Exception:
        # The catalog change is committed already; a failed index update must not turn it into an
        # error page. `manage.py search reindex` repairs the index.
        logger.exception(
            "search index update failed for %d changed, %d removed entities", len(changed), len(removed)
        )


entities_changed.connect(_on_entities_changed, dispatch_uid="search.catalog")
