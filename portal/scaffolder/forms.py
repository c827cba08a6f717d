"""Template parameters as HTML forms: JSON Schema pages with `ui:*` hints → fields, POST → typed
values, and server-side validation with jsonschema against the same schema (plus the choices the
user is allowed: the team picker offers only teams the user may edit, the entity picker only
entities the user can see)."""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft7Validator

from portal.accounts import permissions
from portal.accounts.models import Team

from .templates import schema_problem, strip_ui

NAME_PATTERN = r"^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$"
TEAM_FIELDS = {"OwnerPicker", "TeamPicker", "GroupPicker", "MyGroupsPicker", "OwnedEntityPicker"}
ENTITY_FIELDS = {"EntityPicker", "MultiEntityPicker"}
SECRET_FIELDS = {"Secret"}
PREFIX = "p."
# How deep a value may nest (lists and objects within a field's value). Deeper is refused by validation:
# nothing a template asks for nests so deep, and each level is a recursion for whatever reads it later
# (jsonschema, the JSON encoder, the page's repr of a list).
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNPRINTABLE_IN_PATH = re.compile("[\x00\ud800-\udfff]")


@dataclass
class Field:
    name: str  # dotted path in the parameters, e.g. "railsArguments.minimal"
    title: str
    description: str
    widget: str  # text textarea number boolean select multiselect secret team entity entities repourl
    required: bool
    schema: dict
    choices: list[tuple[str, str]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    value: Any = None
    errors: list[str] = field(default_factory=list)
    autofocus: bool = False

    @property
    def key(self) -> str:
        return PREFIX + self.name

    @property
    def html_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def pattern(self) -> str:
        return str(self.schema.get("pattern") or "")

    @property
    def placeholder(self) -> str:
        return str(
            (self.schema.get("ui:options") or {}).get("placeholder")
            or self.schema.get("ui:placeholder")
            or ""
        )

    @property
    def repo(self) -> dict:
        from .expressions import parse_repo_url

        return parse_repo_url(self.value) if self.value else {"host": "", "owner": "", "repo": ""}

    @property
    def display(self) -> str:
        if self.widget == "secret":
            return "•••••• (hidden)" if self.value else "—"
        if self.value in (None, "", []):
            return "—"
        if isinstance(self.value, bool):
            return "Yes" if self.value else "No"
        labels = dict(self.choices)  # titles, not internal references, on the review step
        if isinstance(self.value, list):
            return ", ".join(str(labels.get(str(v), v)) for v in self.value)
        return str(labels.get(str(self.value), self.value))

    @property
    def checks_name(self) -> bool:
        """A name the run will create (repository, catalog entity): checked for clashes as it is typed."""
        return self.schema.get("ui:field") == "EntityNamePicker"


@dataclass
class Page:
    index: int
    title: str
    description: str
    fields: list[Field]
    schema: dict
    template_names: frozenset[str] = frozenset()  # the field names of every page of the template


def editable_teams(user) -> list[Team]:
    """Teams the user may create things for: the team picker's choices (the permission module decides)."""
    ids = permissions.editable_team_ids(user)
    teams = Team.objects.order_by("name")
    return list(teams if ids is None else teams.filter(pk__in=ids))


def _entity_choices(user, options: dict) -> list[tuple[str, str]]:
    from catalog import selectors

    kinds = [str(k).lower() for k in (options.get("allowedKinds") or [])]
    catalog_filter = options.get("catalogFilter") or {}
    if isinstance(catalog_filter, dict) and catalog_filter.get("kind"):
        wanted = catalog_filter["kind"]
        kinds += [str(k).lower() for k in (wanted if isinstance(wanted, list) else [wanted])]
    qs = selectors.visible_entities(user)
    if kinds:
        qs = qs.filter(kind_key__in=kinds)
    rows = qs.order_by("kind_key", "name_key").values_list("kind_key", "namespace", "name", "title")[:500]
    return [
        (f"{k}:{ns}/{n}", f"{t or n} ({k}:{n})" if not kinds or len(kinds) > 1 else (t or n))
        for k, ns, n, t in rows
    ]


def _list(value: Any) -> list:
    """A schema keyword that should be a list (`enum`, `required`, `ui:order`, `enumNames`): [] when it is
    not. Such a template is refused (templates.schema_problem); its form still shows."""
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _widget(prop: dict) -> str:
    ui_field, ui_widget = prop.get("ui:field"), prop.get("ui:widget")
    ptype = prop.get("type")
    if ui_field in SECRET_FIELDS or ui_widget == "password":
        return "secret"
    if ui_field in TEAM_FIELDS:
        return "team"
    if ui_field in ENTITY_FIELDS:
        return "entities" if ptype == "array" or ui_field == "MultiEntityPicker" else "entity"
    if (
        ptype == "array"
        and isinstance(prop.get("items"), dict)
        and prop["items"].get("ui:field") in ENTITY_FIELDS
    ):
        return "entities"
    if ui_field == "RepoUrlPicker":
        return "repourl"
    if "enum" in prop:
        return "select"
    if ptype == "boolean":
        return "boolean"
    if ptype in ("integer", "number"):
        return "number"
    if ptype == "array" and isinstance(prop.get("items"), dict) and "enum" in prop["items"]:
        return "multiselect"
    if ui_widget == "textarea" or ptype in ("array", "object"):
        return "textarea"
    return "text"


def _fields(schema: dict, user, prefix: str = "", required: set | None = None) -> list[Field]:
    required = {r for r in _list(schema.get("required")) if isinstance(r, str)} if required is None else required
    props = _dict(schema.get("properties"))
    ui_order = [k for k in _list(schema.get("ui:order")) if isinstance(k, str)]
    order = [k for k in ui_order if k in props] + [k for k in props if k not in ui_order]
    out: list[Field] = []
    for key in order:
        prop = props[key] if isinstance(props[key], dict) else {}
        name = f"{prefix}{key}"
        if prop.get("ui:widget") == "hidden":
            continue
        if (
            prop.get("type") == "object"
            and isinstance(prop.get("properties"), dict)
            and "ui:field" not in prop
        ):
            out.extend(_fields(prop, user, prefix=f"{name}."))
            continue
        widget = _widget(prop)
        options = _dict(prop.get("ui:options"))
        if isinstance(prop.get("items"), dict) and widget == "entities" and not options:
            options = _dict(prop["items"].get("ui:options"))
        f = Field(
            name=name,
            title=str(prop.get("title") or key),
            description=str(prop.get("description") or ""),
            widget=widget,
            required=key in required,
            schema=prop,
            autofocus=bool(prop.get("ui:autofocus")),
        )
        if widget == "team":
            f.choices = [(t.name, t.title or t.name) for t in editable_teams(user)]
        elif widget in ("entity", "entities"):
            f.choices = _entity_choices(user, options)
        elif widget == "select":
            names = _list(prop.get("enumNames") or prop.get("ui:enumNames"))
            f.choices = [
                (json.dumps(v) if not isinstance(v, str) else v, str(names[i]) if i < len(names) else str(v))
                for i, v in enumerate(_list(prop["enum"]))
            ]
        elif widget == "multiselect":
            f.choices = [(str(v), str(v)) for v in _list(prop["items"]["enum"])]
        elif widget == "repourl":
            f.hosts = [str(h) for h in (options.get("allowedHosts") or [])] or ["local"]
        if prop.get("ui:field") == "EntityNamePicker" and "pattern" not in prop:
            f.schema = {**prop, "pattern": NAME_PATTERN, "maxLength": 63}
        out.append(f)
    return out


def pages(template, user) -> list[Page]:
    result = [
        Page(
            index=i,
            title=str(p.get("title") or f"Step {i + 1}"),
            description=str(p.get("description") or ""),
            fields=_fields(p, user),
            schema=p,
        )
        for i, p in enumerate(template.pages)
    ]
    names = frozenset(f.name for page in result for f in page.fields)
    for page in result:
        page.template_names = names
    return result


# --- values ---------------------------------------------------------------------------------------


def _set(values: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        nxt = values.get(part)
        if not isinstance(nxt, dict):
            nxt = values[part] = {}
        values = nxt
    values[parts[-1]] = value


def _get(values: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def _pop(values: dict, dotted: str) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        values = values.get(part) if isinstance(values, dict) else None
        if values is None:
            return
    if isinstance(values, dict):
        values.pop(parts[-1], None)


def _coerce(f: Field, post) -> tuple[bool, Any]:
    """(present, value) of one field from the POST data."""
    if f.widget == "boolean":
        return True, post.get(f.key) in ("on", "true", "1")
    if f.widget in ("entities", "multiselect"):
        items = [v for v in post.getlist(f.key) if v]
        return bool(items) or f.required, items
    if f.widget == "repourl":
        host, owner, repo = (post.get(f"{f.key}.{p}", "").strip() for p in ("host", "owner", "repo"))
        if not owner and not repo:
            return False, None
        return True, f"{host or (f.hosts[0] if f.hosts else 'local')}?owner={owner}&repo={repo}"
    raw = post.get(f.key)
    if raw is None or (raw.strip() == "" and f.widget != "secret") or raw == "":
        return False, None
    if f.widget == "select":
        for value in _list(f.schema.get("enum")):
            if (value if isinstance(value, str) else json.dumps(value)) == raw:
                return True, value
        return True, raw
    if f.widget == "number":
        try:
            return True, int(raw) if f.schema.get("type") == "integer" and re.fullmatch(
                r"-?\d+", raw.strip()
            ) else float(raw)
        except ValueError:
            return True, raw
    if f.widget == "textarea" and f.schema.get("type") in ("array", "object"):
        try:
            return True, json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the decoder follows
            return True, raw
    return True, raw if f.widget == "secret" else raw.strip()


def copied(value: Any) -> Any:
    """A deep copy of JSON-shaped values (objects, lists, scalars), made without recursion: values nested
    thousands deep reach validation, which refuses them by name, instead of a RecursionError."""
    if not isinstance(value, dict | list):
        return value
    top: dict | list = {} if isinstance(value, dict) else []
    pending: list[tuple[Any, Any]] = [(value, top)]
    while pending:
        source, target = pending.pop()
        for key, item in source.items() if isinstance(source, dict) else enumerate(source):
            if isinstance(item, dict | list):
                child: Any = {} if isinstance(item, dict) else []
                pending.append((item, child))
            else:
                child = item
            if isinstance(target, dict):
                target[key] = child
            else:
                target.append(child)
    return top


def read_page(page: Page, post, values: dict) -> dict:
    """Merge the POSTed fields of one page into `values` (a copy)."""
    merged = copied(values)
    for f in page.fields:
        present, value = _coerce(f, post)
        if present:
            _set(merged, f.name, value)
        else:
            _pop(merged, f.name)
    return merged


def with_defaults(template_pages: list[Page], values: dict) -> dict:
    merged = copied(values)
    for page in template_pages:
        for f in page.fields:
            if _get(merged, f.name) is None and "default" in f.schema:
                _set(merged, f.name, copy.deepcopy(f.schema["default"]))
    return merged


def fill(page: Page, values: dict) -> None:
    for f in page.fields:
        f.value = _get(values, f.name)


def _validation_schema(page: Page) -> dict:
    schema = strip_ui(copy.deepcopy(page.schema))
    schema.pop("title", None)
    schema.setdefault("type", "object")
    for f in page.fields:
        node = schema
        for part in f.name.split("."):
            node = node.setdefault("properties", {}).setdefault(part, {})
        if f.pattern and "pattern" not in node:
            node["pattern"] = f.pattern
            node.setdefault("maxLength", 63)
        allowed = [c[0] for c in f.choices]
        if f.widget in ("team", "entity"):
            node["enum"] = allowed
        elif f.widget == "entities":
            node.setdefault("type", "array")
            node["items"] = {**(node.get("items") or {}), "enum": allowed}
    return schema


def _message(error) -> tuple[str, str]:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        # jsonschema reports each missing property apart ("'owner' is a required property"), each with the
        # whole `required` list: the one this error is about is the one its message names.
        missing = [p for p in error.validator_value if p not in (error.instance or {})]
        this = next((p for p in missing if error.message.startswith(f"{p!r} ")), missing[0] if missing else "")
        name = ".".join(filter(None, [path, this]))
        return name, "This field is required."
    if error.validator == "enum":
        return path.rsplit(".", 1)[0] if path and path.split(".")[
            -1
        ].isdigit() else path, "Choose one of the offered values (you may not pick this one)."
    if error.validator == "pattern":
        return path, _pattern_message(error.instance, error.validator_value)
    if error.validator == "maxLength" and isinstance(error.instance, str):
        return path, f"Too long: {len(error.instance)} characters, at most {error.validator_value} allowed."
    if error.validator == "minLength" and isinstance(error.instance, str):
        return path, f"Too short: {len(error.instance)} characters, at least {error.validator_value} needed."
    message = error.message  # jsonschema quotes the value first: a long one (a textarea's text) is cut
    return path, message if len(message) <= 500 else message[:240] + "…" + message[-240:]


def _pattern_message(value: Any, pattern: str) -> str:
    """Say what is wrong with the value (spaces, capitals, other characters) before the raw pattern."""
    if not isinstance(value, str):
        return f"Does not match the expected format ({pattern})."
    problems = []
    if any(c.isspace() for c in value):
        problems.append("spaces")
    lower_only = bool(re.search(pattern, "a")) and not re.search(pattern, "A")
    if lower_only and any(c.isupper() for c in value):
        problems.append("capital letters")
    odd = sorted({c for c in value if not (c.isalnum() or c.isspace() or c in "-_.")})
    if odd:
        problems.append("the character(s) " + " ".join(repr(c) for c in odd[:5]))
    if re.search(r"^[-_.]|[-_.]$|[-_.]{2}", value):
        problems.append("a '-' at the start, the end or twice in a row")
    found = f"it has {', '.join(problems)}. " if problems else ""
    return f"Not in the expected format: {found}Expected {pattern}."


NUL_PROBLEM = "must not contain a NUL character (\\u0000)."
NONFINITE_PROBLEM = "must be a finite number (not NaN or infinity)."
DEEP_PROBLEM = f"is nested more than {MAX_DEPTH} levels deep (lists and objects within lists and objects)."


def _surrogate_problem(text: str) -> str:
    found = _SURROGATE.search(text)
    return f"must be valid Unicode text: it holds a lone surrogate (\\u{ord(found.group()):04x})." if found else ""


def _text_problem(text: str) -> str:
    return NUL_PROBLEM if "\x00" in text else _surrogate_problem(text)


def bad_values(values: Any) -> list[tuple[str, str]]:
    """(dotted path, problem) of what no storage takes, whatever the schema says: a NUL (PostgreSQL
    cannot store it) or a lone surrogate (not UTF-8: no database, hash or page can encode it) in a string
    or a key; a number that is NaN or infinite (`nan`, `inf`, `1e400`: JSON has no such numbers); a value
    nested more than MAX_DEPTH lists and objects deep (said once, not looked into). Iterative: values
    arrive nested as deep as the JSON decoder follows."""
    found: list[tuple[str, str]] = []
    pending: list[tuple[Any, str, int]] = [(values, "", 0)]
    while pending:
        node, path, depth = pending.pop()
        if isinstance(node, str):
            problem = _text_problem(node)
            if problem:
                found.append((path, problem))
        elif isinstance(node, float):
            if not math.isfinite(node):
                found.append((path, NONFINITE_PROBLEM))
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                found.append((path, DEEP_PROBLEM))
                continue
            children = []
            for key, value in node.items() if isinstance(node, dict) else enumerate(node):
                child = f"{path}.{key}" if path else str(key)
                problem = _text_problem(key) if isinstance(key, str) else ""
                if problem:
                    found.append((child, problem))
                else:
                    children.append((value, child, depth + 1))
            pending.extend(reversed(children))
    return sorted(found)


def renderable(values: dict) -> dict:
    """`values` as a page may show and carry them on: a value nested too deep is left out, a lone
    surrogate becomes U+FFFD (neither can be written into a page); validation has said so by then."""
    kept = copied(values)
    for path, problem in bad_values(kept):
        if problem == DEEP_PROBLEM:
            _pop(kept, path.split(".", 1)[0])
    pending: list[Any] = [kept]
    while pending:
        node = pending.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if isinstance(value, str) and _SURROGATE.search(value):
                node[key] = value = _SURROGATE.sub("\ufffd", value)
            if isinstance(key, str) and _SURROGATE.search(key):
                del node[key]
                node[_SURROGATE.sub("\ufffd", key)] = value
            if isinstance(value, dict | list):
                pending.append(value)
    return kept


def shown_path(path: str) -> str:
    """A value's dotted path as an error message may show it: NUL and surrogates escaped, a long path cut."""
    path = _UNPRINTABLE_IN_PATH.sub(lambda m: f"\\u{ord(m.group()):04x}", path)
    parts = path.split(".")
    return ".".join(parts[:4]) + ".…" if len(parts) > 4 else path


def _value_error(errors: dict[str, list[str]], page: Page, names: set[str], path: str, problem: str) -> None:
    """A value refused whatever the schema says, at its field; at the first page's top when no page declares
    it (values of other pages are theirs to answer for)."""
    name = next((n for n in names if path == n or path.startswith(n + ".")), None)
    if name is not None:
        errors.setdefault(name, []).append(problem[:1].upper() + problem[1:])
    elif page.index == 0 and not any(path == n or path.startswith(n + ".") for n in page.template_names):
        errors.setdefault("", []).append(f"{shown_path(path)}: {problem}")


def validate_page(page: Page, values: dict) -> dict[str, list[str]]:
    """Field name → messages. Only the page's own schema is checked; the first page also answers for
    values no page declares. What no storage takes is refused anywhere (`bad_values`: a NUL, a lone
    surrogate, a NaN or infinite number, a value nested more than MAX_DEPTH deep). A page whose schema
    is not valid JSON Schema cannot check anything: its problem is the page's error."""
    errors: dict[str, list[str]] = {}
    names = {f.name for f in page.fields}
    problem = schema_problem(page.schema)
    if problem:
        for f in page.fields:
            f.errors = []
        return {"": [f"This template cannot run here: its parameters are not valid JSON Schema ({problem})."]}
    schema = _validation_schema(page)
    bad = bad_values(values)
    nonfinite = {path for path, problem in bad if problem == NONFINITE_PROBLEM}
    for path, problem in bad:
        if problem == NONFINITE_PROBLEM:
            _value_error(errors, page, names, path, problem)
    # Too deep: the schema is not checked (a recursive `$ref` would follow the value down).
    too_deep = any(problem == DEEP_PROBLEM for _, problem in bad)
    for error in () if too_deep else Draft7Validator(schema).iter_errors(values):
        if ".".join(str(p) for p in error.absolute_path) in nonfinite:
            continue  # said above; `nan` passes minimum and maximum, `inf` fails one of them
        name, message = _message(error)
        while name and name not in names and "." in name:
            name = name.rsplit(".", 1)[0]
        errors.setdefault(name if name in names else "", []).append(message)
    for path, problem in bad:
        if problem != NONFINITE_PROBLEM:
            _value_error(errors, page, names, path, problem)
    for f in page.fields:
        f.errors = errors.get(f.name, [])
    return errors


def secret_names(template_pages: list[Page]) -> list[str]:
    return [f.name for p in template_pages for f in p.fields if f.widget == "secret"]


def split_secrets(template_pages: list[Page], values: dict) -> tuple[dict, dict]:
    """(parameters without secrets, {secret name: value})."""
    clean = copied(values)
    found = {}
    for name in secret_names(template_pages):
        value = _get(clean, name)
        if value not in (None, ""):
            found[name] = str(value)
        _pop(clean, name)
    return clean, found


def owner_team(template_pages: list[Page], values: dict, user) -> Team | None:
    """The team the run is created for: the first team-picker value (already validated as editable)."""
    for page in template_pages:
        for f in page.fields:
            chosen = _get(values, f.name) if f.widget == "team" else None
            if chosen:
                return next((t for t in editable_teams(user) if t.name == chosen), None)
    return None


def owner_value(template_pages: list[Page], values: dict) -> str | None:
    """The chosen team's name (the first team picker), before it is checked against the user's teams."""
    for page in template_pages:
        for f in page.fields:
            if f.widget == "team" and isinstance(_get(values, f.name), str) and _get(values, f.name):
                return _get(values, f.name)
    return None


def check_page(user, template_pages: list[Page], page: Page, values: dict) -> dict[str, list[str]]:
    """The page's schema errors, then whether a new project's name is still free: a clash found now is
    said where the name is typed (wizard) or in the 400 (API), not when publishing fails."""
    from . import selectors

    errors = validate_page(page, values)
    for f in page.fields:
        name = values.get(f.name) if f.checks_name else None
        if isinstance(name, str) and name and f.name not in errors:
            clashes = selectors.name_clashes(user, name, owner_value(template_pages, values))
            if clashes:
                errors[f.name] = f.errors = [*clashes, "Choose another name."]
    return errors
