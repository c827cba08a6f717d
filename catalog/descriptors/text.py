"""The searchable words of a descriptor beyond its name, title, tags and description: feature and
entity names of a FeatureSet, a Dataset's columns and classification, the last part of the system,
domain, orchestrator and schedule. Pure: computed where a descriptor is read (in any process)."""

from __future__ import annotations

MAX_WORDS_CHARS = 20_000


def _names(items, key: str = "name") -> list[str]:
    return [str(item.get(key)) for item in items or [] if isinstance(item, dict) and item.get(key)]


def descriptor_words(kind_key: str, spec: dict, metadata: dict) -> str:
    parts: list[str] = []
    if kind_key == "featureset":
        parts += _names(spec.get("features")) + _names(spec.get("entities"))
    elif kind_key == "dataset":
        schema = spec.get("schema") or {}
        parts += _names(schema.get("columns") if isinstance(schema, dict) else None)
        parts.append(str(spec.get("classification") or ""))
    for key in ("system", "domain", "orchestrator", "schedule"):
        value = spec.get(key)
        if isinstance(value, str):
            parts.append(value.split("/")[-1].split(":")[-1])
    return " ".join(p for p in parts if p)[:MAX_WORDS_CHARS]
