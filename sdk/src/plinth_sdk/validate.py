"""Offline descriptor validation (`plinth catalog validate`): the server's own JSON Schemas and kind
table, shipped as package data (`schemas/`, copied by `manage.py catalog sdk-schemas`; a test keeps
them identical to catalog/schemas/). No network, no Django.

It checks what the schemas and the kind table decide: YAML syntax, the envelope (apiVersion, kind,
metadata, spec), the kind's apiVersion and its schema (per `spec.type` where the kind has several).
The server checks more (references, ownership, conflicts with other locations); `--server` asks it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .models import Problem

ENVELOPE_KEYS = {"apiVersion", "kind", "metadata", "spec"}


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


def _message(error) -> tuple[str, list]:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else "?"
        return f"{missing} is required", [*path, missing]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s) {', '.join(map(str, extra))}", path
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}; got {error.instance!r}", path
    return (error.message if len(error.message) < 200 else error.message[:197] + "..."), path


def check_document(data: Any) -> list[tuple[str, list]]:
    """(message, field path) of every problem the schemas find in one document."""
    if not isinstance(data, dict):
        return [("a descriptor must be a mapping", [])]
    problems: list[tuple[str, list]] = []
    for key in data:
        if key not in ENVELOPE_KEYS:
            problems.append((f"unknown top-level field {key!r} (allowed: apiVersion, kind, metadata, spec)", [key]))
    kind, api_version = data.get("kind"), data.get("apiVersion")
    if api_version is None:
        problems.append(("apiVersion is required", ["apiVersion"]))
    table = kinds()
    if not isinstance(kind, str) or kind not in table:
        known = ", ".join(table)
        problems.append(("kind is required" if kind is None else f"unknown kind {kind!r} (known kinds: {known})",
                         ["kind"]))
        return problems
    spec = table[kind]
    if api_version is not None and api_version not in spec["apiVersions"]:
        problems.append((f"apiVersion {api_version!r} is not known for kind {kind} "
                         f"(expected {' or '.join(spec['apiVersions'])})", ["apiVersion"]))
        return problems
    body = data.get("spec")
    schema_file = spec["typeSchemas"].get(body.get("type"), spec["schema"]) if isinstance(body, dict) else spec["schema"]
    errors = sorted(_validator(schema_file).iter_errors(data), key=lambda e: list(map(str, e.path)))
    problems.extend(_message(e) for e in errors)
    return problems


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


def validate_text(text: str, source: str, base: str | None = None) -> FileResult:
    """Every problem of one file (several YAML documents allowed)."""
    import yaml

    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return FileResult(source, 0, [Problem(f"not valid YAML: {reason}", source, line)])
    problems: list[Problem] = []
    count = 0
    for node in nodes:
        if node is None:
            continue
        count += 1
        try:
            loader = yaml.SafeLoader("")
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            problems.append(Problem(f"not valid YAML: {exc}", source, node.start_mark.line + 1))
            continue
        found: list[tuple[str, list]] = []
        data = resolve_placeholders(data, base, found)
        for message, parts in found + check_document(data):
            problems.append(Problem(message, source, _line_of(node, parts), path_str(parts) or None))
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
