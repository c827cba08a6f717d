"""Software templates as the scaffolder sees them: a Template catalog entity turned into pages of
JSON Schema, steps and output, with the folder its skeletons are read from."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from catalog import uploads
from catalog.descriptors.errors import DescriptorError

from .actions import ACTIONS, ALIASES, resolve_action


@dataclass
class Step:
    index: int
    id: str
    name: str
    action: str  # as written in the template
    input: dict
    condition: Any = None

    @property
    def resolved_action(self) -> str | None:
        return resolve_action(self.action)


@dataclass
class Template:
    ref: str
    name: str
    title: str
    description: str
    type: str
    owner: str
    tags: list[str]
    pages: list[dict]
    steps: list[Step]
    output: dict
    source: str  # where the template.yaml was read (an entity's source)
    problems: list[str] = field(default_factory=list)

    @functools.cached_property
    def base_dir(self) -> Path:
        """The folder of the template.yaml on this node (an uploaded template's copy, made if needed);
        skeletons are read only below it. Looked up when an action asks, not when a page lists templates."""
        if not self.source:
            return Path("/nonexistent")
        try:
            return Path(uploads.file_path(self.source)).resolve().parent
        except DescriptorError:
            return Path("/nonexistent")

    @property
    def unsupported_actions(self) -> list[str]:
        return sorted({s.action for s in self.steps if s.resolved_action is None})

    @property
    def mapped_actions(self) -> list[tuple[str, str]]:
        return sorted({(s.action, ALIASES[s.action]) for s in self.steps if s.action in ALIASES})

    @property
    def runnable(self) -> bool:
        return not self.unsupported_actions and not self.problems


def _pages(parameters: Any) -> list[dict]:
    if isinstance(parameters, dict):
        return [parameters]
    if isinstance(parameters, list):
        return [p for p in parameters if isinstance(p, dict)]
    return []


def strip_ui(node: Any) -> Any:
    """A parameter schema without its `ui:*` hints (react-jsonschema-form's, not JSON Schema)."""
    if isinstance(node, dict):
        return {k: strip_ui(v) for k, v in node.items() if not str(k).startswith("ui:")}
    if isinstance(node, list):
        return [strip_ui(v) for v in node]
    return node


def schema_problem(schema: Any) -> str | None:
    """Why a page's schema is not valid JSON Schema (draft 7: an invalid `pattern`, a `minimum` that is
    not a number, an `enum` that is not a list…), or None. Such a page cannot be validated, so the
    template cannot run."""
    try:
        Draft7Validator.check_schema(strip_ui(schema))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the page"
        return f"{where}: {exc.message[:200]}"
    return None


def _schema_problems(pages: list[dict]) -> list[str]:
    problems = []
    for i, page in enumerate(pages):
        problem = schema_problem(page)
        if problem:
            title = f" ({str(page.get('title'))[:80]!r})" if page.get("title") else ""
            problems.append(f"The parameters of page {i + 1}{title} are not valid JSON Schema: {problem}.")
    return problems


def from_data(data: dict, *, ref: str, source: str) -> Template:
    meta, spec = data.get("metadata") or {}, data.get("spec") or {}
    steps, problems, seen = [], [], set()
    for i, raw in enumerate(spec.get("steps") or []):
        step_id = str(raw.get("id") or f"step-{i + 1}")
        if step_id in seen:
            problems.append(f"step id {step_id!r} is used twice")
        seen.add(step_id)
        steps.append(
            Step(
                index=i,
                id=step_id,
                name=str(raw.get("name") or raw.get("action") or step_id),
                action=str(raw.get("action") or ""),
                input=dict(raw.get("input") or {}),
                condition=raw.get("if"),
            )
        )
    pages = _pages(spec.get("parameters"))
    problems += _schema_problems(pages)
    return Template(
        ref=ref,
        name=str(meta.get("name", "")),
        title=str(meta.get("title") or meta.get("name", "")),
        description=str(meta.get("description") or ""),
        type=str(spec.get("type") or ""),
        owner=str(spec.get("owner") or ""),
        tags=list(meta.get("tags") or []),
        pages=pages,
        steps=steps,
        output=dict(spec.get("output") or {}),
        source=source,
        problems=problems,
    )


def from_entity(entity) -> Template:
    return from_data(entity.data, ref=entity.ref, source=entity.source)


def action_names() -> list[str]:
    return sorted(ACTIONS)
