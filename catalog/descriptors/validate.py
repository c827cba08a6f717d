"""Entity validation: envelope, metadata, per-kind JSON Schema, entity references, ML extras.

Owns: validate_entity (all problems of one document, each pointing at a field and a line),
normalize (fills defaults) and registered_model_name. Placeholders ($text/$json/$yaml) must be
resolved first (see placeholders.py); validation never reads files or the network.
"""

from __future__ import annotations

import copy
import json
import math
import re
from functools import cache
from pathlib import Path

import fastjsonschema
from jsonschema import Draft7Validator

from portal.core import urlparts

from . import refs
from .errors import DescriptorError, path_str
from .kinds import KINDS, KindSpec, RefField
from .loader import Document, nul_places

__all__ = ["KINDS", "Discard", "KindSpec", "check_refs", "validate_entity", "normalize", "registered_model_name"]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
MAX_TITLE = 255
MAX_DESCRIPTION = 10_000
MAX_ANNOTATION_VALUE = 65_536
LINK_SCHEMES = {"http", "https", "mailto"}
ENVELOPE_KEYS = {"apiVersion", "kind", "metadata", "spec"}
SERVER_SET = {"relations", "status"}  # top level, derived by the catalog
SERVER_SET_METADATA = {"uid", "etag", "generation"}
REGISTERED_MODEL_ANNOTATION = "mlflow.org/registered-model"
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#-]+$")


class _Collector:
    """Accumulates errors for one document, looking up the line of each field."""

    def __init__(self, doc: Document):
        self.doc, self.errors = doc, []
        self._seen: set[tuple[str, str]] = set()

    def add(self, message: str, *parts) -> None:
        field = path_str(parts)
        if (field, message) in self._seen:
            return
        self._seen.add((field, message))
        self.errors.append(DescriptorError(message, self.doc.source, self._line(list(parts)), field))

    def _line(self, parts: list) -> int:
        while parts:  # the field itself, else its nearest ancestor that has a line
            line = self.doc.field_lines.get(path_str(parts))
            if line is not None:
                return line
            parts.pop()
        return self.doc.line


class Discard:
    """A collector for callers that want what the checks find, not their complaints."""

    def add(self, message: str, *parts) -> None:
        pass


def validate_entity(doc: Document, relations: list | None = None) -> list[DescriptorError]:
    """Every problem of one document. `relations`: a list to fill, on the way, with the outgoing
    (type, EntityRef) relations of its valid references — `relations.derive_relations` of the
    document when no problem is returned (a reader would otherwise parse every reference twice)."""
    out = _Collector(doc)
    data = doc.data
    for key in data:
        if key in SERVER_SET:
            out.add(f"'{key}' is set by the catalog; remove it from the descriptor", key)
        elif key not in ENVELOPE_KEYS:
            out.add(f"unknown top-level field {key!r} (allowed: apiVersion, kind, metadata, spec)", key)
    spec = _check_kind(data, out)
    _check_metadata(data.get("metadata"), out)
    if spec is not None:
        _check_schema(spec, data, out)
        if isinstance(data.get("spec"), dict):
            check_refs(spec, data, out, relations)
            _EXTRA_CHECKS.get(spec.kind, lambda d, o: None)(data, out)
    return out.errors


def storable_errors(doc: Document) -> list[DescriptorError]:
    """A NUL character (YAML's "\\0" or JSON's "\\u0000" escape, or a $text file's byte) in any key or
    value: PostgreSQL cannot store one in text or jsonb. A number that is not finite (NaN, infinity: a
    JSON body's `1e400`): no JSON column stores one. Each is reported at its field and line.
    Callers on the ingestion path ask only when the dumped JSON text shows an escaped NUL (the loaders
    refuse non-finite numbers already)."""
    out = _Collector(doc)
    for parts, in_key in nul_places(doc.data):
        if in_key:
            out.add("a key contains a NUL character (\\u0000), which cannot be stored", *parts)
        else:
            out.add("contains a NUL character (\\u0000), which cannot be stored", *parts)
    for parts in non_finite_places(doc.data):
        out.add("is not a finite number (NaN, or beyond a 64-bit float's range), which cannot be stored", *parts)
    return out.errors


def non_finite_places(value, *, limit: int = 50) -> list[list]:
    """The paths of NaN and ±infinity in parsed data (at most `limit`)."""
    found: list[list] = []
    stack: list[tuple[list, object]] = [([], value)]
    while stack and len(found) < limit:
        parts, node = stack.pop()
        if isinstance(node, float):
            if not math.isfinite(node):
                found.append(parts)
        elif isinstance(node, dict):
            stack.extend(([*parts, key], item) for key, item in node.items())
        elif isinstance(node, list):
            stack.extend(([*parts, i], item) for i, item in enumerate(node))
    return found


def _check_kind(data: dict, out: _Collector) -> KindSpec | None:
    kind, api_version = data.get("kind"), data.get("apiVersion")
    if api_version is None:
        out.add("apiVersion is required", "apiVersion")
    if not isinstance(kind, str) or not kind:
        out.add("kind is required" if kind is None else "kind must be a non-empty string", "kind")
        return None
    spec = KINDS.get(kind)
    if spec is None:
        near = [k for k in KINDS if k.lower() == kind.lower()]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        out.add(f"unknown kind {kind!r}{hint} (known kinds: {', '.join(KINDS)})", "kind")
        return None
    if api_version is not None and api_version not in spec.api_versions:
        out.add(
            f"apiVersion {api_version!r} is not known for kind {kind} "
            f"(expected {' or '.join(spec.api_versions)})",
            "apiVersion",
        )
        return None
    return spec


def _check_metadata(meta, out: _Collector) -> None:
    if not isinstance(meta, dict):
        out.add("metadata is required" if meta is None else "metadata must be a mapping", "metadata")
        return
    for key in SERVER_SET_METADATA & set(meta):
        out.add(f"'{key}' is set by the catalog; remove it from the descriptor", "metadata", key)
    if "name" not in meta:
        out.add("name is required", "metadata", "name")
    elif problem := refs.name_problem(meta["name"]):
        out.add(problem, "metadata", "name")
    if "namespace" in meta and (problem := refs.namespace_problem(meta["namespace"])):
        out.add(problem, "metadata", "namespace")
    for key, cap in (("title", MAX_TITLE), ("description", MAX_DESCRIPTION)):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            out.add(f"{key} must be a string", "metadata", key)
        elif value is not None and len(value) > cap:
            out.add(f"{key} is {len(value)} characters long; at most {cap} allowed", "metadata", key)
    _check_pairs(meta, "labels", refs.label_value_problem, out)
    _check_pairs(meta, "annotations", _annotation_value_problem, out)
    tags = meta.get("tags")
    if tags is not None and not isinstance(tags, list):
        out.add("tags must be a list", "metadata", "tags")
    for i, tag in enumerate(tags if isinstance(tags, list) else []):
        if problem := refs.tag_problem(tag):
            out.add(problem, "metadata", "tags", i)
    _check_links(meta.get("links"), out)


def _annotation_value_problem(value) -> str | None:
    if not isinstance(value, str):
        return f"annotation values must be strings, not {type(value).__name__} (quote it)"
    if len(value) > MAX_ANNOTATION_VALUE:
        return f"annotation value is longer than {MAX_ANNOTATION_VALUE} characters"
    return None


def _check_pairs(meta: dict, which: str, value_problem, out: _Collector) -> None:
    pairs = meta.get(which)
    if pairs is None:
        return
    if not isinstance(pairs, dict):
        out.add(f"{which} must be a mapping", "metadata", which)
        return
    for key, value in pairs.items():
        if problem := refs.key_problem(key):
            out.add(problem, "metadata", which, str(key))
        elif problem := value_problem(value):
            out.add(problem, "metadata", which, key)


def link_url_problem(url) -> str | None:
    """Only http(s) and mailto: links are rendered as links; javascript:, data:, file: ... are refused."""
    if not isinstance(url, str) or not url:
        return "url must be a non-empty string"
    if url != url.strip() or any(ord(c) < 32 or c == "\x7f" for c in url):
        # browsers strip/ignore these, so " javascript:..." would still run as a script
        return "url must not contain whitespace or control characters at its ends or inside"
    parts = urlparts.split(url)
    if parts is None:
        return "url is not a valid URL (check the brackets and the host name)"
    if parts.scheme.lower() not in LINK_SCHEMES:
        shown = f"{parts.scheme}:" if parts.scheme else "a relative URL"
        return f"url scheme {shown} is not allowed (use http, https or mailto)"
    if parts.scheme.lower() in ("http", "https") and not parts.netloc:
        return "url must include a host"
    return None


def _check_links(links, out: _Collector) -> None:
    if links is None:
        return
    if not isinstance(links, list):
        out.add("links must be a list", "metadata", "links")
        return
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            out.add("each link must be a mapping with a url", "metadata", "links", i)
            continue
        if problem := link_url_problem(link.get("url")):
            out.add(problem, "metadata", "links", i, "url")
        for key in ("title", "icon", "type"):
            if key in link and not isinstance(link[key], str):
                out.add(f"{key} must be a string", "metadata", "links", i, key)


@cache
def _validator(schema_file: str) -> Draft7Validator:
    schema = json.loads((SCHEMA_DIR / schema_file).read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_message(error) -> tuple[str, list]:
    """Turn a jsonschema error into (human message, path of the offending field)."""
    path = list(error.absolute_path)
    v, arg = error.validator, error.validator_value
    if v == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else "?"
        return f"{missing} is required", [*path, missing]
    if v == "type":
        kinds = " or ".join(arg) if isinstance(arg, list) else arg
        return f"must be {kinds}, not {_short(error.instance)}", path
    if v == "enum":
        return f"must be one of {', '.join(map(str, arg))}; got {_short(error.instance)}", path
    if v == "const":
        return f"must be {arg!r}", path
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s) {', '.join(map(str, extra))}", path
    if v == "anyOf" and all(set(s) == {"required"} for s in arg):
        options = " or ".join(s["required"][0] for s in arg)
        return f"one of {options} is required", path
    if v == "minLength":
        return "must not be empty", path
    if v == "minItems":
        return f"must have at least {arg} item(s)", path
    if v == "pattern":
        return f"{_short(error.instance)} does not match the expected format {arg}", path
    return error.message if len(error.message) < 200 else error.message[:197] + "...", path


@cache
def _fast_validator(schema_file: str):
    """A compiled validator (fastjsonschema) for the common case: valid documents.

    It only ever short-cuts to "valid"; any document it rejects is re-checked by jsonschema, which
    collects every error with its path. Defaults are never written into the data."""
    schema = json.loads((SCHEMA_DIR / schema_file).read_text(encoding="utf-8"))
    return fastjsonschema.compile(schema, use_default=False, use_formats=False)


def _check_schema(spec: KindSpec, data: dict, out: _Collector) -> None:
    body = data.get("spec")
    schema_file = (
        spec.type_schemas.get(body.get("type"), spec.schema) if isinstance(body, dict) else spec.schema
    )
    try:
        _fast_validator(schema_file)(data)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    for error in sorted(_validator(schema_file).iter_errors(data), key=lambda e: list(map(str, e.path))):
        message, path = _schema_message(error)
        out.add(message, *path)


def _ref_values(field: RefField, value) -> list[tuple[list, object]]:
    if not field.many:
        return [([], value)] if isinstance(value, str) else []
    items = value if isinstance(value, list) else []
    found = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            found.append(([i], item))
        elif field.object_key and isinstance(item, dict) and isinstance(item.get(field.object_key), str):
            found.append(([i, field.object_key], item[field.object_key]))
    return found  # wrong shapes are the schema's to report


def iter_refs(spec: KindSpec, data: dict):
    """Yield (RefField, path parts, raw value) for every reference in spec."""
    body = data.get("spec") or {}
    for field in spec.refs:
        if field.name in body:
            for sub, raw in _ref_values(field, body[field.name]):
                yield field, ["spec", field.name, *sub], raw


def check_refs(spec: KindSpec, data: dict, out, relations: list | None = None, namespace: str | None = None) -> None:
    """Report the invalid references of `data` to `out`; append the relation of each valid one to
    `relations` (once per type and target). `namespace`: the default namespace of targets (the
    entity's own, when valid)."""
    namespace = namespace or _own_namespace(data)
    for field, path, raw in iter_refs(spec, data):
        try:
            ref = refs.parse_ref(raw, default_kind=field.default_kind, default_namespace=namespace)
        except ValueError as exc:
            if not field.lenient:
                out.add(str(exc), *path)
            continue
        if field.allowed_kinds and ref.kind not in field.allowed_kinds:
            out.add(f"{raw!r} must refer to a {' or '.join(field.allowed_kinds)}, not a {ref.kind}", *path)
        elif relations is not None and (field.relation, ref) not in relations:
            relations.append((field.relation, ref))


def _own_namespace(data: dict) -> str:
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    ns = meta.get("namespace", "default")
    return ns if isinstance(ns, str) and refs.is_valid_namespace(ns) else "default"


# --- kind-specific checks that JSON Schema cannot express --------------------------------------


def registered_model_name(entity: dict) -> str | None:
    """The MLflow registered model of a Model: spec.mlflow.registeredModel, else the annotation."""
    mlflow = _mapping(_mapping(entity.get("spec")).get("mlflow"))
    annotations = _mapping(_mapping(entity.get("metadata")).get("annotations"))
    return mlflow.get("registeredModel") or annotations.get(REGISTERED_MODEL_ANNOTATION)


def _mapping(value) -> dict:
    """`value` when it is a mapping, else an empty one: kind checks run on descriptors whose schema errors
    (a `metadata: 5`, say) are already reported, and must not fail on them."""
    return value if isinstance(value, dict) else {}


def _check_model(data: dict, out: _Collector) -> None:
    spec = data["spec"]
    mlflow = _mapping(spec.get("mlflow"))
    annotated = _mapping(_mapping(data.get("metadata")).get("annotations")).get(REGISTERED_MODEL_ANNOTATION)
    named = mlflow.get("registeredModel")
    if named and annotated and named != annotated:
        out.add(
            f"registeredModel {named!r} disagrees with annotation {REGISTERED_MODEL_ANNOTATION}={annotated!r}",
            "spec",
            "mlflow",
            "registeredModel",
        )
    card = spec.get("modelCard")
    if (
        isinstance(card, str)
        and card
        and (urlparts.scheme(card) != "" or card.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", card))
    ):
        out.add(
            "modelCard must be a relative path inside the repository (no scheme, '/' or '..')",
            "spec",
            "modelCard",
        )


def _check_unique(items, what: str, path: list, out: _Collector) -> None:
    seen = set()
    for i, item in enumerate(items if isinstance(items, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in seen:
                out.add(f"duplicate {what} name {name!r}", *path, i, "name")
            seen.add(name)


def _check_featureset(data: dict, out: _Collector) -> None:
    _check_unique(data["spec"].get("features"), "feature", ["spec", "features"], out)
    _check_unique(data["spec"].get("entities"), "entity", ["spec", "entities"], out)


def cron_problem(value: str) -> str | None:
    if value.strip() in _CRON_MACROS:
        return None
    fields = value.split()
    if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(f) for f in fields):
        return f"schedule {value!r} is not a cron expression (5 fields, e.g. '0 3 * * *', or @daily)"
    return None


def _check_pipeline(data: dict, out: _Collector) -> None:
    schedule = data["spec"].get("schedule")
    if isinstance(schedule, str) and schedule and (problem := cron_problem(schedule)):
        out.add(problem, "spec", "schedule")


def _check_dataset(data: dict, out: _Collector) -> None:
    uri = data["spec"].get("uri")
    scheme = urlparts.scheme(uri.strip()) if isinstance(uri, str) else ""
    if scheme is None:
        out.add("uri is not a valid URL (check the brackets and the host name)", "spec", "uri")
    elif scheme in {"javascript", "data", "vbscript"}:
        out.add("uri scheme is not allowed", "spec", "uri")
    _check_unique(data["spec"].get("schema"), "column", ["spec", "schema"], out)


_EXTRA_CHECKS = {
    "Model": _check_model,
    "FeatureSet": _check_featureset,
    "Pipeline": _check_pipeline,
    "Dataset": _check_dataset,
}


def normalize(data: dict) -> dict:
    """A copy with defaults filled: metadata.namespace 'default', empty labels/annotations/tags/links.

    Only the envelope and metadata are copied (the parts changed here); spec is shared with `data`."""
    out = dict(data)
    out["metadata"] = copy.copy(data.get("metadata", {}))
    meta = out["metadata"]
    if isinstance(meta, dict):
        meta.setdefault("namespace", "default")
        for key, empty in (("labels", {}), ("annotations", {}), ("tags", []), ("links", [])):
            meta.setdefault(key, empty)
    return out
