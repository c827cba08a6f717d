"""Template expressions: Backstage's `${{ parameters.x }}` syntax evaluated by Jinja2's sandbox.

Owns the one Jinja2 environment of the scaffolder. Values entered by users are only ever passed
as *data* (variables in the context); they are never compiled as template source. The sandbox
blocks attribute access to Python internals (`__class__`, `mro`, `func_globals`, …), `|attr` and
`str.format` escapes (Jinja2 ≥ 3.1.6); on top of that we cap what a template can allocate
(`*`, `**`, `%`, huge format widths) so an expression cannot exhaust the worker's memory before
the run's time limit stops it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import ChainableUndefined, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

__all__ = ["ExpressionError", "env", "evaluate", "render_string", "render_value", "truthy"]

MAX_RESULT = 1_000_000  # characters or items a single operator may produce
_FORMAT_WIDTH = re.compile(r"[:%][^}\sa-zA-Z]*\d{5,}")
_WHOLE = re.compile(r"^\s*\$\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
_JS_OPS = [
    (re.compile(r"!=="), "!="),
    (re.compile(r"==="), "=="),
    (re.compile(r"&&"), " and "),
    (re.compile(r"\|\|"), " or "),
    (re.compile(r"\bnull\b"), "none"),
    (re.compile(r"\bundefined\b"), "none"),
]


class ExpressionError(Exception):
    """An expression or template that could not be evaluated, with a message for the run page."""


def parse_repo_url(value: Any) -> dict:
    """Backstage's RepoUrlPicker value `host?owner=o&repo=r` → {host, owner, repo}."""
    text = str(value or "")
    parts = urlsplit(text if "://" in text else f"//{text}")
    query = parse_qs(parts.query)
    first = {k: v[0] for k, v in query.items() if v}
    return {
        "host": parts.hostname or "",
        "owner": first.get("owner", ""),
        "repo": first.get("repo", ""),
        "organization": first.get("organization", ""),
        "workspace": first.get("workspace", ""),
        "project": first.get("project", ""),
    }


def project_slug(value: Any) -> str:
    parsed = parse_repo_url(value)
    return f"{parsed['owner']}/{parsed['repo']}"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _too_big(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple) and len(value) > MAX_RESULT


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for a, b in ((left, right), (right, left)):
                if (
                    isinstance(a, str | bytes | list | tuple)
                    and isinstance(b, int)
                    and len(a) * b > MAX_RESULT
                ):
                    raise SecurityError("the result of '*' would be too large")
        if operator == "%" and isinstance(left, str) and _FORMAT_WIDTH.search(left):
            raise SecurityError("format width too large")
        result = super().call_binop(context, operator, left, right)
        if _too_big(result):
            raise SecurityError(f"the result of {operator!r} is too large")
        return result

    def unsafe_undefined(self, obj, attribute):
        # The stock sandbox returns an Undefined (rendered as "" by ChainableUndefined): say it instead.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def checked(*args, **kwargs):
            if _FORMAT_WIDTH.search(template):
                raise SecurityError("format width too large")
            return wrapped(*args, **kwargs)

        return checked


@cache
def env() -> _Sandbox:
    environment = _Sandbox(
        variable_start_string="${{",
        variable_end_string="}}",
        keep_trailing_newline=True,
        undefined=ChainableUndefined,
        autoescape=False,  # skeletons are source code and YAML, not HTML; values are data, not markup
    )
    environment.filters.update(
        {
            "dump": _dump,
            "parseRepoUrl": parse_repo_url,
            "projectSlug": project_slug,
            "json": _dump,
        }
    )
    return environment


def _translate(expression: str) -> str:
    """Backstage templates are written for nunjucks (JavaScript): map the few operators that differ."""
    for pattern, replacement in _JS_OPS:
        expression = pattern.sub(replacement, expression)
    return expression


def _explain(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return f"blocked by the template sandbox: {exc}"
    return f"{type(exc).__name__}: {exc}"


# What evaluating or rendering a template's expression may raise: the template's fault, said to its
# user (ExpressionError), never a crash of the run.
_FAILURES = (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError, AttributeError, KeyError,
             IndexError, RecursionError, OverflowError)


def evaluate(expression: str, context: dict) -> Any:
    """Evaluate one expression (the inside of `${{ … }}`) to a native value."""
    try:
        compiled = env().compile_expression(_translate(expression), undefined_to_none=True)
        return _plain(compiled(**context))
    except _FAILURES as exc:
        raise ExpressionError(f"expression `{expression.strip()}`: {_explain(exc)}") from exc


def _plain(value: Any) -> Any:
    if isinstance(value, ChainableUndefined):
        return None
    return value


def render_string(text: str, context: dict, *, name: str = "<input>") -> str:
    """Render a template string (a skeleton file, an input with text around `${{ … }}`)."""
    try:
        return env().from_string(text).render(**context)
    except _FAILURES as exc:
        line = getattr(exc, "lineno", None)
        where = f"{name}:{line}" if line else name
        raise ExpressionError(f"{where}: {_explain(exc)}") from exc


def render_value(value: Any, context: dict, *, name: str = "input") -> Any:
    """Render a step input: a string that is exactly one `${{ expr }}` keeps the value's type."""
    if isinstance(value, dict):
        return {k: render_value(v, context, name=f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, name=f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${{" in value:
        whole = _WHOLE.match(value)
        if whole:
            return evaluate(whole.group("expr"), context)
        return render_string(_translate_inline(value), context, name=name)
    return value


def _translate_inline(text: str) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: "${{" + _translate(m.group(1)) + "}}", text, flags=re.DOTALL)


def truthy(condition: Any, context: dict) -> bool:
    """A step's `if`: a boolean, or a string with `${{ … }}` (or a bare expression)."""
    if isinstance(condition, bool) or condition is None:
        return condition is not False
    text = str(condition)
    whole = _WHOLE.match(text)
    value = evaluate(whole.group("expr") if whole else text, context)
    return bool(value)


def referenced_names(text: str) -> set[str]:
    """Top-level names a template string uses (for checks and tests)."""
    try:
        ast = env().parse(text)
    except TemplateError:
        return set()
    return {n.name for n in ast.find_all(nodes.Name)}
