"""Offline descriptor validation (`plinth catalog validate`): the server's own JSON Schemas and kind
table, shipped as package data (`schemas/`, copied by `manage.py catalog sdk-schemas`; a test keeps
them identical to catalog/schemas/). No network, no Django.

It checks what the server checks in a descriptor by itself: YAML as the server reads it (YAML 1.2
scalars — `on`, `no` and dates stay strings —, no duplicate keys, no tags beyond plain data, finite
numbers), the envelope (apiVersion, kind, no server-set fields), the metadata rules (name, namespace,
title, description, labels, annotations, tags, links: a port of catalog/descriptors/validate.py and
refs.py, kept in agreement with the server by tests/sdk), the kind's apiVersion and its schema (per
`spec.type` where the kind has several) and the kind-specific checks. The server checks more
(references, ownership, conflicts with other locations); `--server` asks it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .models import Problem

ENVELOPE_KEYS = {"apiVersion", "kind", "metadata", "spec"}
SERVER_SET = {"relations", "status"}  # top level, derived by the catalog
SERVER_SET_METADATA = {"uid", "etag", "generation"}
MAX_TITLE = 255
MAX_DESCRIPTION = 10_000
MAX_ANNOTATION_VALUE = 65_536
LINK_SCHEMES = {"http", "https", "mailto"}
REGISTERED_MODEL_ANNOTATION = "mlflow.org/registered-model"
NAME_RE = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
NAMESPACE_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
TAG_RE = re.compile(r"[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*")
DNS_LABEL_RE = re.compile(r"[a-z0-9]+(?:-+[a-z0-9]+)*")
MAX_NAME = 63
MAX_PREFIX = 253
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#-]+$")


@dataclass(frozen=True)
class FileResult:
    source: str
    documents: int
    problems: list[Problem]

    @property
    def valid(self) -> bool:
        return not self.problems


@cache
def kinds() -> dict[str, dict]:
    return json.loads(resources.files(__package__).joinpath("schemas/kinds.json").read_text(encoding="utf-8"))


@cache
def _validator(schema_file: str):
    from jsonschema import Draft7Validator

    schema = json.loads(resources.files(__package__).joinpath(f"schemas/{schema_file}").read_text(encoding="utf-8"))
    return Draft7Validator(schema)


def path_str(parts: list) -> str:
    """`["spec", "targets", 0]` → `spec.targets[0]`, as the server names fields."""
    import re

    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(r"^[A-Za-z0-9_$-]+$", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += '["' + str(part).replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def _line_of(node, parts: list) -> int | None:
    """The line of the field at `parts` in a composed YAML node (its nearest ancestor's if absent)."""
    import yaml

    line = node.start_mark.line + 1
    for part in parts:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error) -> tuple[str, list]:
    """A jsonschema error as the server words it: (message, path of the offending field)."""
    path = list(error.absolute_path)
    v, arg = error.validator, error.validator_value
    if v == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else "?"
        return f"{missing} is required", [*path, missing]
    if v == "type":
        kinds_ = " or ".join(arg) if isinstance(arg, list) else arg
        return f"must be {kinds_}, not {_short(error.instance)}", path
    if v == "enum":
        return f"must be one of {', '.join(map(str, arg))}; got {_short(error.instance)}", path
    if v == "const":
        return f"must be {arg!r}", path
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s) {', '.join(map(str, extra))}", path
    if v == "anyOf" and all(set(s) == {"required"} for s in arg):
        return f"one of {' or '.join(s['required'][0] for s in arg)} is required", path
    if v == "minLength":
        return "must not be empty", path
    if v == "minItems":
        return f"must have at least {arg} item(s)", path
    if v == "pattern":
        return f"{_short(error.instance)} does not match the expected format {arg}", path
    return (error.message if len(error.message) < 200 else error.message[:197] + "..."), path


# -- names and metadata: the server's rules (catalog/descriptors/refs.py and validate.py) ------------


def _non_ascii_problem(value: str) -> str | None:
    if value.isascii():
        return None
    import unicodedata

    ch = next(c for c in value if ord(c) > 127)
    return f"contains non-ASCII character U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')}"


def _grammar_problem(value, what: str, regex: re.Pattern, rule: str, max_len: int = MAX_NAME) -> str | None:
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    if not value:
        return f"{what} must not be empty"
    if problem := _non_ascii_problem(value):
        return f"{what} {value!r} {problem}"
    if len(value) > max_len:
        return f"{what} is {len(value)} characters long; at most {max_len} allowed"
    if not regex.fullmatch(value):
        return f"{what} {value!r} is invalid: {rule}"
    return None


def name_problem(value) -> str | None:
    """Why `value` is not a valid entity name (None when it is)."""
    return _grammar_problem(value, "name", NAME_RE, "use letters and digits, joined by single '-', '_' or '.'")


def namespace_problem(value) -> str | None:
    return _grammar_problem(value, "namespace", NAMESPACE_RE, "use lowercase letters and digits, joined by single '-'")


def tag_problem(value) -> str | None:
    return _grammar_problem(value, "tag", TAG_RE, "use lowercase letters, digits, ':', '+' or '#', joined by single '-'")


def key_problem(value) -> str | None:
    """A label or annotation key: `[prefix/]name`, the prefix a DNS name (<= 253), the name like an entity's."""
    if not isinstance(value, str):
        return f"key must be a string, not {type(value).__name__}"
    if problem := _non_ascii_problem(value):
        return f"key {value!r} {problem}"
    prefix, slash, name = value.rpartition("/")
    valid_prefix = 0 < len(prefix) <= MAX_PREFIX and all(
        DNS_LABEL_RE.fullmatch(p) and len(p) <= 63 for p in prefix.split("."))
    if slash and not valid_prefix:
        return f"key prefix {prefix!r} is invalid: use a lowercase DNS name of at most 253 characters"
    if problem := name_problem(name):
        return f"key {value!r}: {problem}"
    return None


def _label_value_problem(value) -> str | None:
    if value == "":
        return None
    return _grammar_problem(value, "label value", NAME_RE, "use letters and digits, joined by single '-', '_' or '.'")


def _annotation_value_problem(value) -> str | None:
    if not isinstance(value, str):
        return f"annotation values must be strings, not {type(value).__name__} (quote it)"
    if len(value) > MAX_ANNOTATION_VALUE:
        return f"annotation value is longer than {MAX_ANNOTATION_VALUE} characters"
    return None


def _url_scheme(value: str) -> str | None:
    """The lower-case scheme ("" for none), or None when the value cannot be read as a URL."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(value).scheme.lower()
    except ValueError:
        return None


def link_url_problem(url) -> str | None:
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url:
        return "url must be a non-empty string"
    if url != url.strip() or any(ord(c) < 32 or c == "\x7f" for c in url):
        return "url must not contain whitespace or control characters at its ends or inside"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "url is not a valid URL (check the brackets and the host name)"
    if parts.scheme.lower() not in LINK_SCHEMES:
        shown = f"{parts.scheme}:" if parts.scheme else "a relative URL"
        return f"url scheme {shown} is not allowed (use http, https or mailto)"
    if parts.scheme.lower() in ("http", "https") and not parts.netloc:
        return "url must include a host"
    return None


def _check_pairs(meta: dict, which: str, value_problem, add) -> None:
    pairs = meta.get(which)
    if pairs is None:
        return
    if not isinstance(pairs, dict):
        add(f"{which} must be a mapping", "metadata", which)
        return
    for key, value in pairs.items():
        if problem := key_problem(key):
            add(problem, "metadata", which, str(key))
        elif problem := value_problem(value):
            add(problem, "metadata", which, key)


def _check_metadata(meta, add) -> None:
    if not isinstance(meta, dict):
        add("metadata is required" if meta is None else "metadata must be a mapping", "metadata")
        return
    for key in sorted(SERVER_SET_METADATA & set(meta)):
        add(f"'{key}' is set by the catalog; remove it from the descriptor", "metadata", key)
    if "name" not in meta:
        add("name is required", "metadata", "name")
    elif problem := name_problem(meta["name"]):
        add(problem, "metadata", "name")
    if "namespace" in meta and (problem := namespace_problem(meta["namespace"])):
        add(problem, "metadata", "namespace")
    for key, cap in (("title", MAX_TITLE), ("description", MAX_DESCRIPTION)):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            add(f"{key} must be a string", "metadata", key)
        elif value is not None and len(value) > cap:
            add(f"{key} is {len(value)} characters long; at most {cap} allowed", "metadata", key)
    _check_pairs(meta, "labels", _label_value_problem, add)
    _check_pairs(meta, "annotations", _annotation_value_problem, add)
    tags = meta.get("tags")
    if tags is not None and not isinstance(tags, list):
        add("tags must be a list", "metadata", "tags")
    for i, tag in enumerate(tags if isinstance(tags, list) else []):
        if problem := tag_problem(tag):
            add(problem, "metadata", "tags", i)
    links = meta.get("links")
    if links is None:
        return
    if not isinstance(links, list):
        add("links must be a list", "metadata", "links")
        return
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            add("each link must be a mapping with a url", "metadata", "links", i)
            continue
        if problem := link_url_problem(link.get("url")):
            add(problem, "metadata", "links", i, "url")
        for key in ("title", "icon", "type"):
            if key in link and not isinstance(link[key], str):
                add(f"{key} must be a string", "metadata", "links", i, key)


# -- kind-specific checks JSON Schema cannot express (as the server's) ------------------------------


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _check_model(data: dict, add) -> None:
    spec = data["spec"]
    named = _mapping(spec.get("mlflow")).get("registeredModel")
    annotated = _mapping(_mapping(data.get("metadata")).get("annotations")).get(REGISTERED_MODEL_ANNOTATION)
    if named and annotated and named != annotated:
        add(f"registeredModel {named!r} disagrees with annotation {REGISTERED_MODEL_ANNOTATION}={annotated!r}",
            "spec", "mlflow", "registeredModel")
    card = spec.get("modelCard")
    if isinstance(card, str) and card and (_url_scheme(card) != "" or card.startswith(("/", "\\"))
                                           or ".." in re.split(r"[/\\]", card)):
        add("modelCard must be a relative path inside the repository (no scheme, '/' or '..')", "spec", "modelCard")


def _check_unique(items, what: str, path: list, add) -> None:
    seen = set()
    for i, item in enumerate(items if isinstance(items, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in seen:
                add(f"duplicate {what} name {name!r}", *path, i, "name")
            seen.add(name)


def _check_featureset(data: dict, add) -> None:
    _check_unique(data["spec"].get("features"), "feature", ["spec", "features"], add)
    _check_unique(data["spec"].get("entities"), "entity", ["spec", "entities"], add)


def _check_pipeline(data: dict, add) -> None:
    schedule = data["spec"].get("schedule")
    if isinstance(schedule, str) and schedule and schedule.strip() not in _CRON_MACROS:
        fields = schedule.split()
        if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(f) for f in fields):
            add(f"schedule {schedule!r} is not a cron expression (5 fields, e.g. '0 3 * * *', or @daily)",
                "spec", "schedule")


def _check_dataset(data: dict, add) -> None:
    uri = data["spec"].get("uri")
    scheme = _url_scheme(uri.strip()) if isinstance(uri, str) else ""
    if scheme is None:
        add("uri is not a valid URL (check the brackets and the host name)", "spec", "uri")
    elif scheme in {"javascript", "data", "vbscript"}:
        add("uri scheme is not allowed", "spec", "uri")
    _check_unique(data["spec"].get("schema"), "column", ["spec", "schema"], add)


_EXTRA_CHECKS = {"Model": _check_model, "FeatureSet": _check_featureset, "Pipeline": _check_pipeline,
                 "Dataset": _check_dataset}


def _nul_places(value) -> list[tuple[list, bool]]:
    """Where a document holds a NUL character, which the server cannot store: (path, in a key)."""
    found: list[tuple[list, bool]] = []
    stack: list[tuple[list, object]] = [([], value)]
    while stack and len(found) < 50:
        parts, node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                found.append((parts, False))
        elif isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in str(key):
                    found.append((parts, True))
                else:
                    stack.append(([*parts, key], item))
        elif isinstance(node, list):
            stack.extend(([*parts, i], item) for i, item in enumerate(node))
    return found


def check_document(data: Any) -> list[tuple[str, list]]:
    """(message, field path) of every problem the server finds in one document by itself (not its
    references): the envelope, the metadata, the kind's schema and the kind-specific checks."""
    if not isinstance(data, dict):
        return [("a descriptor must be a mapping", [])]
    problems: list[tuple[str, list]] = []
    seen: set[tuple[str, str]] = set()

    def add(message: str, *parts) -> None:
        key = (path_str(list(parts)), message)
        if key not in seen:
            seen.add(key)
            problems.append((message, list(parts)))

    for key in data:
        if key in SERVER_SET:
            add(f"'{key}' is set by the catalog; remove it from the descriptor", key)
        elif key not in ENVELOPE_KEYS:
            add(f"unknown top-level field {key!r} (allowed: apiVersion, kind, metadata, spec)", key)
    spec = _check_kind(data, add)
    _check_metadata(data.get("metadata"), add)
    if spec is not None:
        body = data.get("spec")
        schema_file = spec["typeSchemas"].get(body.get("type"), spec["schema"]) if isinstance(body, dict) else spec["schema"]
        for error in sorted(_validator(schema_file).iter_errors(data), key=lambda e: list(map(str, e.path))):
            message, parts = _message(error)
            add(message, *parts)
        if isinstance(body, dict):
            _EXTRA_CHECKS.get(data["kind"], lambda d, a: None)(data, add)
    if not problems:  # as the server: only a descriptor valid otherwise is checked for what it cannot store
        for parts, in_key in _nul_places(data):
            add("a key contains a NUL character (\\u0000), which cannot be stored" if in_key
                else "contains a NUL character (\\u0000), which cannot be stored", *parts)
    return problems


def _check_kind(data: dict, add) -> dict | None:
    kind, api_version = data.get("kind"), data.get("apiVersion")
    if api_version is None:
        add("apiVersion is required", "apiVersion")
    if not isinstance(kind, str) or not kind:
        add("kind is required" if kind is None else "kind must be a non-empty string", "kind")
        return None
    table = kinds()
    if kind not in table:
        near = [k for k in table if k.lower() == kind.lower()]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        add(f"unknown kind {kind!r}{hint} (known kinds: {', '.join(table)})", "kind")
        return None
    spec = table[kind]
    if api_version is not None and api_version not in spec["apiVersions"]:
        add(f"apiVersion {api_version!r} is not known for kind {kind} (expected {' or '.join(spec['apiVersions'])})",
            "apiVersion")
        return None
    return spec


PLACEHOLDERS = ("$text", "$json", "$yaml")


def resolve_placeholders(data: Any, base: str | None, problems: list[tuple[str, list]], parts: list | None = None) -> Any:
    """`{$text: ./file}`, `{$json: …}`, `{$yaml: …}` replaced by the file's content, as the server does
    before validating; a file outside the descriptor's folder or missing is a problem. URLs are not
    fetched offline: the value is taken to be a string."""
    import os

    parts = parts or []
    if isinstance(data, dict):
        if len(data) == 1 and next(iter(data)) in PLACEHOLDERS and isinstance(next(iter(data.values())), str):
            kind, target = next(iter(data.items()))
            if "://" in target or base is None:
                return target
            path = os.path.realpath(os.path.join(base, target))
            if not (path + os.sep).startswith(os.path.realpath(base) + os.sep) and path != os.path.realpath(base):
                problems.append((f"{kind} target '{target}' is outside the descriptor's folder", parts))
                return ""
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                problems.append((f"{kind} target '{target}' cannot be read: {exc.strerror}", parts))
                return ""
            if kind == "$text":
                return text
            try:
                import yaml

                return json.loads(text) if kind == "$json" else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError) as exc:
                problems.append((f"{kind} target '{target}' is not valid: {exc}", parts))
                return ""
        return {k: resolve_placeholders(v, base, problems, [*parts, k]) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_placeholders(v, base, problems, [*parts, i]) for i, v in enumerate(data)]
    return data


_STD = "tag:yaml.org,2002:"
# Explicit tags the server allows: only those of JSON's types (!!binary, !!set, !!timestamp… are refused).
ALLOWED_TAGS = {None, "!"} | {_STD + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _DocumentProblem(Exception):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message, self.line = message, line


@cache
def _loader():
    """PyYAML's safe loader reading as the server's loader does (catalog/descriptors/loader.py): YAML
    1.2 core-schema scalars like Backstage (`on`, `no` and dates stay strings, `0o17` is octal), and a
    document problem for a duplicate key, a tag that is no plain data, a recursive alias or .nan/.inf."""
    import math

    import yaml
    from yaml.events import AliasEvent
    from yaml.nodes import MappingNode

    class Loader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self.open_anchors: set[str] = set()

        def compose_node(self, parent, index):
            event = self.peek_event()
            line = event.start_mark.line + 1
            if isinstance(event, AliasEvent):
                if event.anchor in self.open_anchors:  # a cycle: JSON cannot represent it
                    raise _DocumentProblem(f"recursive alias *{event.anchor}", line)
                return super().compose_node(parent, index)
            if event.tag not in ALLOWED_TAGS:
                shown = "!!" + event.tag[len(_STD):] if event.tag.startswith(_STD) else event.tag
                raise _DocumentProblem(f"tag {shown} is not allowed (only plain YAML data)", line)
            if event.anchor:
                self.open_anchors.add(event.anchor)
            node = super().compose_node(parent, index)
            self.open_anchors.discard(event.anchor)
            return node

        def construct_yaml_int(self, node):
            value = self.construct_scalar(node).replace("_", "")
            if value.startswith("0o"):
                return int(value[2:], 8)
            return super().construct_yaml_int(node)

        def construct_yaml_float(self, node):
            value = super().construct_yaml_float(node)
            if not math.isfinite(value):
                raise _DocumentProblem("non-finite numbers (.nan, .inf) are not allowed", node.start_mark.line + 1)
            return value

        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            if isinstance(node, MappingNode):
                for key_node, _ in node.value:
                    if key_node.tag == _STD + "merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        if key in seen:
                            raise _DocumentProblem(f"duplicate key {key!r} (first defined on line {seen[key]})",
                                                   key_node.start_mark.line + 1)
                        seen[key] = key_node.start_mark.line + 1
                    except TypeError:
                        raise _DocumentProblem("mapping keys must be scalars", key_node.start_mark.line + 1) from None
            return super().construct_mapping(node, deep=deep)

    Loader.yaml_implicit_resolvers = {}
    for tag, regexp, first in (
        (_STD + "bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
        (_STD + "int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
        (_STD + "float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                         r"|\.(?:nan|NaN|NAN))$", list("-+0123456789.")),
        (_STD + "null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        (_STD + "merge", r"^(?:<<)$", ["<"]),
    ):
        Loader.add_implicit_resolver(tag, re.compile(regexp), first)
    Loader.add_constructor(_STD + "int", Loader.construct_yaml_int)
    Loader.add_constructor(_STD + "float", Loader.construct_yaml_float)
    Loader.add_constructor(_STD + "map", Loader.construct_yaml_map)
    return Loader


def validate_text(text: str, source: str, base: str | None = None) -> FileResult:
    """Every problem of one file (several YAML documents allowed)."""
    import yaml
    from yaml.events import DocumentEndEvent

    problems: list[Problem] = []
    count = 0
    loader = _loader()(text)
    try:
        while loader.check_node():
            try:
                node = loader.get_node()
            except _DocumentProblem as problem:  # this document is skipped; the next ones are read
                problems.append(Problem(problem.message, source, problem.line))
                while not loader.check_event(DocumentEndEvent):
                    loader.get_event()
                loader.get_event()
                loader.anchors, loader.open_anchors = {}, set()
                continue
            if node is None:
                continue
            try:
                data = loader.construct_document(node)
            except _DocumentProblem as problem:
                problems.append(Problem(problem.message, source, problem.line))
                continue
            except Exception as exc:  # noqa: BLE001 (`!!int abc`: a problem of the file, never a crash)
                mark = getattr(exc, "problem_mark", None) or node.start_mark
                problems.append(Problem(f"invalid value: {exc}", source, mark.line + 1))
                continue
            if data is None:
                continue
            count += 1
            found: list[tuple[str, list]] = []
            data = resolve_placeholders(data, base, found)
            for message, parts in found + check_document(data):
                problems.append(Problem(message, source, _line_of(node, parts), path_str(parts) or None))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return FileResult(source, 0, [Problem(f"not valid YAML: {reason}", source, line)])
    finally:
        loader.dispose()
    return FileResult(source, count, problems)


def validate_file(path: str) -> FileResult:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return FileResult(path, 0, [Problem("no such file", path)])
    except (OSError, UnicodeDecodeError) as exc:
        return FileResult(path, 0, [Problem(f"cannot read: {exc}", path)])
    import os

    return validate_text(text, path, base=os.path.dirname(os.path.abspath(path)))
