"""Relations derived from an entity's spec, the way Backstage's built-in processor derives them.

Owns: RELATION_PAIRS (each outgoing type and its inverse), inverse(), derive_relations().
Authors never write relations; dangling targets are allowed (the target may arrive later).
Only outgoing relations are returned; the caller stores the inverse on the target side.
"""

from __future__ import annotations

import re

from .kinds import KINDS
from .refs import EntityRef, is_valid_namespace
from .validate import Discard, check_refs

RELATION_PAIRS: dict[str, str] = {
    "ownedBy": "ownerOf",
    "partOf": "hasPart",
    "dependsOn": "dependencyOf",
    "providesApi": "apiProvidedBy",
    "consumesApi": "apiConsumedBy",
    "memberOf": "hasMember",
    "childOf": "parentOf",
    "consumesFeatures": "featuresConsumedBy",
    "trainedOn": "trainedModel",
    "consumesDataset": "datasetConsumedBy",
    "producesDataset": "datasetProducedBy",
    "deploymentOf": "deployedAs",
    "servedBy": "servesDeployment",
}
# What people read: "Consumes features", not `consumesFeatures` (entity page, lineage tab, graph).
RELATION_LABELS: dict[str, str] = {
    "ownedBy": "Owned by", "ownerOf": "Owner of",
    "partOf": "Part of", "hasPart": "Has part",
    "dependsOn": "Depends on", "dependencyOf": "Dependency of",
    "providesApi": "Provides API", "apiProvidedBy": "API provided by",
    "consumesApi": "Consumes API", "apiConsumedBy": "API consumed by",
    "memberOf": "Member of", "hasMember": "Has member",
    "childOf": "Child of", "parentOf": "Parent of",
    "consumesFeatures": "Consumes features", "featuresConsumedBy": "Features consumed by",
    "trainedOn": "Trained on", "trainedModel": "Trained model",
    "consumesDataset": "Consumes dataset", "datasetConsumedBy": "Dataset consumed by",
    "producesDataset": "Produces dataset", "datasetProducedBy": "Dataset produced by",
    "deploymentOf": "Deployment of", "deployedAs": "Deployed as",
    "servedBy": "Served by", "servesDeployment": "Serves deployment",
}
# Both directions, so inverse() works from either side (dependencyOf -> dependsOn, parentOf -> childOf...).
INVERSE: dict[str, str] = {**RELATION_PAIRS, **{b: a for a, b in RELATION_PAIRS.items()}}


def inverse(relation_type: str) -> str:
    try:
        return INVERSE[relation_type]
    except KeyError:
        raise ValueError(f"unknown relation type {relation_type!r}") from None


def relation_label(relation_type: str) -> str:
    """The human label of a relation type; an unknown camelCase type is split into words."""
    known = RELATION_LABELS.get(relation_type)
    if known:
        return known
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", relation_type).split()
    return " ".join([words[0].capitalize(), *(w.lower() if not w.isupper() else w for w in words[1:])]) if words else ""


def derive_relations(entity: dict) -> list[tuple[str, EntityRef]]:
    """Outgoing (type, target) pairs of a validated entity; unparsable refs are skipped
    (validate_entity reports them). Default namespace of targets is the entity's own namespace."""
    spec = KINDS.get(entity.get("kind"))
    if spec is None:
        return []
    meta = entity.get("metadata") or {}
    namespace = meta.get("namespace", "default")
    namespace = (
        namespace.lower()
        if isinstance(namespace, str) and is_valid_namespace(namespace.lower())
        else "default"
    )
    out: list[tuple[str, EntityRef]] = []
    check_refs(spec, entity, Discard(), out, namespace)
    return out
