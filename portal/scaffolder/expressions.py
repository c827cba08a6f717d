"""Template expressions: Backstage's `${{ parameters.x }}` syntax evaluated by Jinja2's sandbox.

Owns the one Jinja2 environment of the scaffolder. Values entered by users are only ever passed
as *data* (variables in the context); they are never compiled as template source. The sandbox
blocks attribute access to Python internals (`__class__`, `mro`, `func_globals`, …), `|attr` and
`str.format` escapes (Jinja2 ≥ 3.1.6); on top of that we cap what a template can allocate so an
expression cannot exhaust the worker's memory before the run's time limit stops it. Every way to make
a big value from a small template is checked *before* it allocates: the operators (`*`, `**`, `%`, `+`,
`~`), the filters and globals that take a size or repeat their input (`center`, `indent`, `wordwrap`,
`replace`, `format`, `join`, `batch`, `slice`, `sum`, `map`, `lipsum`…), the methods of values (an
allow-list of str, bytes, int and float methods, each with the size of its result computed from its
arguments: `center`, `encode`, `hex`, `to_bytes`…; `format` with nested widths), and what is written
out (`{{ … }}`, `|string`, `|dump`, a whole rendered file). Every call's result is checked again once
made, so no chain of calls grows past the cap. A value counts what it holds, nested: a list of one big
string repeated counts the string each time, as printing it would.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
import types
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import ChainableUndefined, TemplateError, filters, nodes
from jinja2.compiler import CodeGenerator
from jinja2.runtime import BlockReference, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup, escape

__all__ = ["ExpressionError", "env", "evaluate", "render_string", "render_value", "truthy"]

MAX_RESULT = 1_000_000  # characters or items a single operator, filter or call may produce
MAX_RENDERED = 5_000_000  # characters of one rendered template (a skeleton file: 2 MiB by default, conf.max_file_bytes)
MAX_INT_BITS = 1_000_000  # an integer of ~300,000 digits
MAX_FORMAT_WIDTH = 9_999  # one width or precision in a format (`%0999999d`, `{:>{}}`): five digits are refused
# One %-conversion: mapping key, flags, width, precision, length modifier, conversion type.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
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


_HOLDERS = (str, bytes, dict, list, tuple, set, frozenset, range)
_RENDERED = (Macro, BlockReference)  # what a call of these returns is bounded as it is written


def _size(value: Any, limit: int = MAX_RESULT) -> int:
    """Characters and items `value` holds, nested (a string held twice counts twice: printed, it is there
    twice); counting stops soon after `limit`, so that a huge value costs no more than a small one."""
    total, pending = 0, [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            if total <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            if total <= limit:
                held = [v for v in item if isinstance(v, _HOLDERS)]
                total += len(item) - len(held)  # numbers, booleans, None: one each
                pending.extend(held)
        elif isinstance(item, range):
            total += len(item)
        else:
            total += 1
    return total


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} would be too large (more than {MAX_RESULT:,} characters or items)")


def _checked_size(value: Any, what: str, limit: int = MAX_RESULT) -> None:
    if _size(value, limit) > limit:
        raise _refuse(what)


def _count(value: Any) -> int | None:
    """A size argument (a width, a count) as an int, or None when it is not one (the callee then says so)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return None


def _check_width(value: Any, what: str) -> None:
    n = _count(value)
    if n is not None and n > MAX_RESULT:
        raise _refuse(what)


def _replaced_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    """The length of `text.replace(old, new, count)`, counted without making it."""
    found = text.count(old) if old else len(text) + 1
    n = _count(count)
    if n is not None and n >= 0:
        found = min(found, n)
    return len(text) + found * (len(new) - len(old))


def _bounded_list(items: Any, what: str) -> list:
    """The items of an iterable, refused as soon as what they hold passes MAX_RESULT (never all made first)."""
    out, total = [], 0
    for item in items:
        total += 1 + _size(item)
        if total > MAX_RESULT:
            raise _refuse(what)
        out.append(item)
    return out


def _check_percent(template: Any, args: Any, what: str = "'%'") -> None:
    """`template % args` (and |format): the widths and precisions it asks for, written or taken from the
    arguments (`%*s`), plus the arguments themselves, may total at most MAX_RESULT."""
    if not isinstance(template, str | bytes):
        return
    text = template if isinstance(template, str) else template.decode("latin-1")
    values = list(args) if isinstance(args, tuple) else [args]
    numbers = [v for v in values if _count(v) is not None]
    total = len(text) + _size(args)
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.group(1, 2):
            if not part:
                continue
            if part == "*":
                if any(abs(n) > MAX_FORMAT_WIDTH for n in numbers):  # which argument is the width: any of them
                    raise SecurityError("format width too large")
                total += sum(abs(n) for n in numbers)
            elif len(part) > len(str(MAX_FORMAT_WIDTH)):
                raise SecurityError("format width too large")
            else:
                total += int(part)
        if total > MAX_RESULT:
            raise _refuse(f"the result of {what}")


class _BoundedFormatter(SandboxedFormatter):
    """`str.format`/`format_map`: each field's spec is checked once its nested fields are substituted
    (`'{:>{}}'.format('x', 10**8)`), and the fields together may produce at most MAX_RESULT characters."""

    def vformat(self, format_string, args, kwargs):
        self._produced = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value, format_spec):
        if any(len(n) > len(str(MAX_FORMAT_WIDTH)) for n in re.findall(r"\d+", format_spec)):
            raise SecurityError("format width too large")
        if _size(value) > MAX_RESULT:
            raise _refuse("a formatted value")
        result = super().format_field(value, format_spec)
        self._produced += len(result)
        if self._produced > MAX_RESULT:
            raise _refuse("the result of format()")
        return result


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _one(value, args, kwargs) -> int:  # a number, a bool, a position: one item
    return 1


def _as_long(value, args, kwargs) -> int:  # a part of the value (strip, removeprefix, unescape…)
    return len(value)


def _pieces(value, args, kwargs) -> int:
    """split, rsplit: one item per piece, each but the first after a separator that is not kept: the
    pieces and their characters never outnumber the value's characters plus one."""
    return len(value) + 1


def _lines(value, args, kwargs) -> int:  # as split; twice that when the pieces keep their line breaks
    return 2 * len(value) + 1 if _arg(args, kwargs, 0, "keepends") else len(value) + 1


def _parted(value, args, kwargs) -> int:  # partition, rpartition: three parts of the value
    return len(value) + 3


def _recased(value, args, kwargs) -> int:
    # A character may become three ('ﬃ'.upper() == 'FFI'); ASCII never grows (isascii is O(1)).
    return len(value) if value.isascii() else 3 * len(value)


def _padded(value, args, kwargs) -> int:  # center, ljust, rjust, zfill
    return max(len(value), _count(_arg(args, kwargs, 0, "width")) or 0)


def _expanded(value, args, kwargs) -> int:
    size = _count(_arg(args, kwargs, 0, "tabsize", 8)) or 0
    return len(value) + value.count("\t" if isinstance(value, str) else b"\t") * max(size, 0)


def _replaced(value, args, kwargs) -> int:
    kind = str if isinstance(value, str) else bytes
    old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
    if not (isinstance(old, kind) and isinstance(new, kind)):
        return len(value)  # the call itself refuses them
    return _replaced_size(value, old, new, _arg(args, kwargs, 2, "count", -1))


def _translated(value, args, kwargs) -> int:
    table = _arg(args, kwargs, 0, "table")
    held = table.values() if isinstance(table, dict) else table if isinstance(table, list | tuple) else ()
    longest = max((len(v) for v in held if isinstance(v, str | bytes)), default=1)
    return len(value) * max(longest, 1)


# Error handlers that write nothing or one character for a character they cannot encode or decode.
_PLAIN_ERRORS = ("strict", "ignore", "replace", "surrogateescape", "surrogatepass")


def _encoded(value, args, kwargs) -> int:
    """At most how many bytes `value.encode(encoding, errors)` makes: UTF-8 four per character (one for
    ASCII, by the widest character), UTF-16/32 four, ASCII and Latin-1 one; escaping codecs and handlers (`unicode_escape`,
    `backslashreplace`, `xmlcharrefreplace`: '\\U0010ffff', '&#1114111;') ten, `namereplace` a hundred
    (the longest character name is 88 letters)."""
    encoding, errors = _arg(args, kwargs, 0, "encoding", "utf-8"), _arg(args, kwargs, 1, "errors", "strict")
    try:
        codec = codecs.lookup(encoding).name if isinstance(encoding, str) else ""
    except LookupError:
        return len(value)  # the call itself says so
    if errors not in _PLAIN_ERRORS:
        factor = 100 if errors == "namereplace" else 10
    elif codec == "utf-8":  # by the widest character: one byte below U+0080 … four from U+10000
        widest = ord(max(value)) if value else 0
        factor = 1 if widest < 0x80 else 2 if widest < 0x800 else 3 if widest < 0x10000 else 4
    elif codec in ("ascii", "iso8859-1"):
        factor = 1
    elif codec.startswith("utf-16"):  # two bytes, four for a character beyond U+FFFF (a surrogate pair)
        factor = 2 if not value or ord(max(value)) < 0x10000 else 4
    elif codec.startswith("utf-32"):
        factor = 4
    else:
        factor = 10
    return len(value) * factor + (4 if codec.startswith(("utf-16", "utf-32")) else 0)  # a byte-order mark


def _decoded(value, args, kwargs) -> int:
    # One character per byte at most; `backslashreplace` writes '\\xff' (four) for a byte it cannot decode.
    return len(value) * (1 if _arg(args, kwargs, 1, "errors", "strict") in _PLAIN_ERRORS else 4)


def _hexed(value, args, kwargs) -> int:
    return 2 * len(value) + (len(value) if _arg(args, kwargs, 0, "sep") is not None else 0)


def _to_bytes(value, args, kwargs) -> int:
    return _count(_arg(args, kwargs, 0, "length", 1)) or 0


def _from_args(receiver, args, kwargs) -> int:  # bytes.fromhex, float.fromhex, int.from_bytes: their input
    return _size(args) + _size(kwargs)


def _escaped(receiver, args, kwargs) -> int:  # Markup.escape: '&#39;' is five characters for one
    return 5 * _size(args) + 1


# The methods of str and bytes (Markup's included) a template may call, each with the most characters,
# bytes or items its result may hold; computed before the call and refused beyond MAX_RESULT. A method
# not listed is refused: a new one is allowed once its size is known. (`format`, `format_map` are
# replaced by wrap_str_format; `join` is checked in _checked_call.)
_Bound = Callable[[Any, tuple, dict], int]  # (the value or class, args, kwargs) → most the result holds
_TEXT_METHODS: dict[str, _Bound] = {
    **dict.fromkeys(
        ("count", "endswith", "find", "index", "rfind", "rindex", "startswith", "isalnum", "isalpha", "isascii",
         "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle",
         "isupper"), _one),
    **dict.fromkeys(("lstrip", "rstrip", "strip", "removeprefix", "removesuffix", "unescape", "striptags"),
                    _as_long),
    **dict.fromkeys(("split", "rsplit"), _pieces),
    "splitlines": _lines,
    **dict.fromkeys(("partition", "rpartition"), _parted),
    **dict.fromkeys(("capitalize", "casefold", "lower", "swapcase", "title", "upper"), _recased),
    **dict.fromkeys(("center", "ljust", "rjust", "zfill"), _padded),
    "expandtabs": _expanded,
    "replace": _replaced,
    "translate": _translated,
    "encode": _encoded,
    "decode": _decoded,
    "hex": _hexed,
    "join": _one,
}
_NUMBER_METHODS: dict[str, _Bound] = {
    **dict.fromkeys(("bit_length", "bit_count", "conjugate", "as_integer_ratio", "is_integer", "hex"), _one),
    "to_bytes": _to_bytes,
}
# Class methods reached through a value (`b''.fromhex`, `(1).from_bytes`, `{}.fromkeys`, Markup's escape).
_CLASS_METHODS: dict[str, _Bound] = {"fromhex": _from_args, "from_bytes": _from_args, "escape": _escaped, "fromkeys": _one}
_VALUE_TYPES = (str, bytes, int, float, dict)


def _label(receiver: Any, name: str) -> str:
    owner = receiver if isinstance(receiver, type) else type(receiver)
    return f"{owner.__name__}.{name}()"


def _checked_call(obj: Any, args: tuple, kwargs: dict) -> tuple:
    """A method of a value (str, bytes, int, float, dict) checked before it runs: one not known to the
    sandbox is refused, and one whose result would hold more than MAX_RESULT characters, bytes or items
    (`'x'.center(10**9)`, `(1).to_bytes(10**8)`, `s.encode().hex()` of a big `s`) is refused before it
    allocates. An iterable to join (or to make a dict's keys) is read, boundedly, first; the call then
    gets the list read (returned)."""
    receiver: Any = getattr(obj, "__self__", None)
    if isinstance(obj, types.BuiltinMethodType) and receiver is None and obj.__qualname__.endswith(".maketrans"):
        if 3 * (_size(args) + _size(kwargs)) > MAX_RESULT:  # `str.maketrans` (static): a dict of its input
            raise _refuse(f"{obj.__qualname__}()")
        return args
    if not isinstance(obj, types.BuiltinMethodType | types.MethodType) or receiver is None:
        return args
    name, label = obj.__name__, _label(receiver, obj.__name__)
    if isinstance(receiver, type):
        if not issubclass(receiver, _VALUE_TYPES):
            return args
        table = _CLASS_METHODS
    elif isinstance(receiver, str | bytes):
        table = _TEXT_METHODS
    elif isinstance(receiver, int | float):
        table = _NUMBER_METHODS
    else:
        return args
    bound = table.get(name)
    if bound is None:
        raise SecurityError(f"{label} is not allowed in a template")
    if name == "join" and args:
        items = _bounded_list(args[0], label)
        if len(receiver) * max(len(items) - 1, 0) + _size(items) > MAX_RESULT:
            raise _refuse(label)
        return (items, *args[1:])
    if name == "fromkeys" and args:
        value = _arg(args, kwargs, 1, "value")
        if isinstance(args[0], _HOLDERS) and len(args[0]) * (1 + _size(value)) > MAX_RESULT:
            raise _refuse(label)  # known from its length, before its keys are read
        keys = _bounded_list(args[0], label)
        if len(keys) * (1 + _size(value)) + _size(keys) > MAX_RESULT:
            raise _refuse(label)
        return (keys, *args[1:])
    # Markup escapes the strings it is given ('"' becomes '&#34;'): they are measured escaped.
    given = tuple(escape(a) if isinstance(a, str) else a for a in args) if isinstance(receiver, Markup) else args
    if bound(receiver, given, kwargs) > MAX_RESULT:
        raise _refuse(label)
    return args


def _checked_result(obj: Any, result: Any) -> None:
    """Whatever a call returned, checked once made: no chain of calls (`s.encode().hex().encode().hex()…`)
    grows past MAX_RESULT, whichever method a check before the call did not foresee. A macro's or a
    block's output is bounded as it is written (MAX_RENDERED) instead."""
    if isinstance(obj, _RENDERED) or isinstance(getattr(obj, "__self__", None), _RENDERED):
        return
    if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"the result of a call is too large (an integer of more than {MAX_INT_BITS:,} bits)")
    if isinstance(result, _HOLDERS):
        receiver, name = getattr(obj, "__self__", None), getattr(obj, "__name__", type(obj).__name__)
        _checked_size(result, f"the result of {_label(receiver, name) if receiver is not None else name + '()'}")


# --- filters and globals that take a size or repeat their input, checked before they allocate -----


def _guarded(original):
    """Decorate a check that runs before `original` (keeping its pass_context/pass_eval_context mark)."""

    def decorate(check):
        @functools.wraps(original)
        def guarded(*args, **kwargs):
            return check(original, *args, **kwargs)

        return guarded

    return decorate


@_guarded(filters.do_center)
def _center(original, value, width=80):
    _check_width(width, "center()")
    return original(value, width)


@_guarded(filters.do_indent)
def _indent(original, s, width=4, first=False, blank=False):
    step = len(width) if isinstance(width, str) else _count(width)
    text = str(s)
    if step is not None and len(text) + (text.count("\n") + 1) * step > MAX_RESULT:
        raise _refuse("indent()")
    return original(s, width, first, blank)


@_guarded(filters.do_wordwrap)
def _wordwrap(original, environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    text, joint = str(s), wrapstring if wrapstring is not None else environment.newline_sequence
    per_line = _count(width)
    # At most one break per word or hyphenated part, plus one per `width` characters of a long word.
    breaks = len(re.findall(r"[\s-]", text)) + 1 + (len(text) // per_line if per_line and per_line > 0 else len(text))
    if len(text) + breaks * len(str(joint)) > MAX_RESULT:
        raise _refuse("wordwrap()")
    return original(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@_guarded(filters.do_replace)
def _replace(original, eval_ctx, s, old, new, count=None):
    if _replaced_size(str(s), str(old), str(new), -1 if count is None else count) > MAX_RESULT:
        raise _refuse("replace()")
    return original(eval_ctx, s, old, new, count)


@_guarded(filters.do_format)
def _format(original, value, *args, **kwargs):
    if args and kwargs:
        return original(value, *args, **kwargs)  # refused by Jinja2 itself
    _check_percent(str(value), kwargs or args, "format()")
    return original(value, *args, **kwargs)


@_guarded(filters.sync_do_join)
def _join(original, eval_ctx, value, d="", attribute=None):
    if isinstance(value, list | tuple | range) and len(str(d)) * max(len(value) - 1, 0) > MAX_RESULT:
        raise _refuse("join()")
    items = _bounded_list(value, "join()")
    if len(str(d)) * max(len(items) - 1, 0) + _size(items) > MAX_RESULT:
        raise _refuse("join()")
    return original(eval_ctx, items, d, attribute)


def _check_groups(count, fill_with, what: str) -> None:
    """batch() and slice(): `count` groups, each padded with `fill_with`, may total at most MAX_RESULT."""
    n = _count(count)
    if n is not None and (n > MAX_RESULT or (fill_with is not None and n * max(_size(fill_with), 1) > MAX_RESULT)):
        raise _refuse(what)


@_guarded(filters.do_batch)
def _batch(original, value, linecount, fill_with=None):
    _check_groups(linecount, fill_with, "batch()")
    return original(value, linecount, fill_with)


@_guarded(filters.sync_do_slice)
def _slice(original, value, slices, fill_with=None):
    _check_groups(slices, fill_with, "slice()")
    return original(value, slices, fill_with)


@_guarded(filters.sync_do_sum)
def _sum(original, environment, iterable, attribute=None, start=0):
    if not isinstance(start, int | float):  # adding lists or strings: as big as all of them
        iterable = _bounded_list(iterable, "sum()")
        if _size(iterable) + _size(start) > MAX_RESULT:
            raise _refuse("sum()")
    return original(environment, iterable, attribute, start)


@_guarded(filters.sync_do_map)
def _map(original, context, value, *args, **kwargs):
    """Lazy, like Jinja2's: what the mapped items hold may total at most MAX_RESULT
    (`range(100000)|map('center', 999999)` is refused at its second item, not made)."""
    produced = 0
    for item in original(context, value, *args, **kwargs):
        produced += 1 + _size(item)
        if produced > MAX_RESULT:
            raise _refuse("map()")
        yield item


def _written(original, what: str):
    """A filter that writes its whole input out (`string`, `dump`, `tojson`, `pprint`)."""

    def check(original, *args, **kwargs):
        value = args[1] if getattr(original, "jinja_pass_arg", None) else args[0]
        _checked_size(value, what)
        return original(*args, **kwargs)

    return _guarded(original)(check)


def _lipsum(n=5, html=True, min=20, max=100):  # noqa: A002 - Jinja2's own argument names
    count, longest = _count(n), _count(max)
    if count is not None and longest is not None and count * longest * 12 > MAX_RESULT:
        raise _refuse("lipsum()")
    return generate_lorem_ipsum(n, html, min, max)


def _bounded_concat(chunks) -> str:
    """Environment.concat: a rendered template (or a captured block, a macro's output) is written one
    piece at a time and refused once longer than MAX_RENDERED, before it is all in memory."""
    out, total = [], 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_RENDERED:
            raise SecurityError(f"the rendered text would be too large (more than {MAX_RENDERED:,} characters)")
        out.append(chunk)
    return "".join(out)


def _finalize(value: Any) -> Any:
    """What `{{ … }}` writes, checked before it becomes text."""
    _checked_size(value, "the value written")
    return value


class _Buffer(list):
    """Where a captured block (`{% set x %}…{% endset %}`), a macro or a call block collects its output:
    refused once it holds more than MAX_RENDERED characters, as it grows."""

    def __init__(self):
        super().__init__()
        self.size = 0

    def _grow(self, chunks) -> None:
        self.size += sum(len(c) for c in chunks)
        if self.size > MAX_RENDERED:
            raise SecurityError(f"the rendered text would be too large (more than {MAX_RENDERED:,} characters)")

    def append(self, chunk) -> None:
        self._grow((chunk,))
        super().append(chunk)

    def extend(self, chunks) -> None:
        chunks = tuple(chunks)
        self._grow(chunks)
        super().extend(chunks)


class _CodeGenerator(CodeGenerator):
    def buffer(self, frame):
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.buffer()")

    def visit_Concat(self, node, frame):  # noqa: N802 - Jinja2's visitor naming
        """`a ~ b` through Environment.joined (checked), not a bare join."""
        self.write("environment.joined((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGenerator

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > MAX_INT_BITS:
            raise SecurityError("the result of '**' would be too large")
        if operator == "*":
            for a, b in ((left, right), (right, left)):
                if isinstance(a, str | bytes | list | tuple) and isinstance(b, int) and _size(a) * b > MAX_RESULT:
                    raise SecurityError("the result of '*' would be too large")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError("the result of '*' would be too large")
        if (operator == "+" and isinstance(left, str | bytes | list | tuple) and isinstance(right, type(left))
                and _size(left) + _size(right) > MAX_RESULT):
            raise SecurityError("the result of '+' would be too large")
        if operator == "%":
            _check_percent(left, right)
        result = super().call_binop(context, operator, left, right)
        if _too_big(result):
            raise SecurityError(f"the result of {operator!r} is too large")
        return result

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja2's signature
        args = _checked_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        _checked_result(__obj, result)
        return result

    buffer = _Buffer

    def joined(self, parts) -> str:
        total, out = 0, []
        for part in parts:
            _checked_size(part, "the result of '~'")
            text = str(part)
            total += len(text)
            if total > MAX_RESULT:
                raise _refuse("the result of '~'")
            out.append(text)
        return "".join(out)

    def unsafe_undefined(self, obj, attribute):
        # The stock sandbox returns an Undefined (rendered as "" by ChainableUndefined): say it instead.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def wrap_str_format(self, value):
        """Jinja2's, with a formatter that checks widths after nested substitution and the total."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        template = value.__self__
        if not isinstance(template, str):
            return None
        str_type, is_format_map = type(template), value.__name__ == "format_map"

        def wrapper(*args, **kwargs):
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            formatter = (
                _BoundedEscapeFormatter(self, escape=template.escape)
                if isinstance(template, Markup)
                else _BoundedFormatter(self)
            )
            return str_type(formatter.vformat(template, args, kwargs))

        return wrapper


@cache
def env() -> _Sandbox:
    environment = _Sandbox(
        variable_start_string="${{",
        variable_end_string="}}",
        keep_trailing_newline=True,
        undefined=ChainableUndefined,
        autoescape=False,  # skeletons are source code and YAML, not HTML; values are data, not markup
        finalize=_finalize,
    )
    environment.concat = _bounded_concat
    environment.filters.update(
        {
            "dump": _written(_dump, "dump()"),
            "parseRepoUrl": parse_repo_url,
            "projectSlug": project_slug,
            "json": _written(_dump, "json()"),
            "center": _center,
            "indent": _indent,
            "wordwrap": _wordwrap,
            "replace": _replace,
            "format": _format,
            "join": _join,
            "batch": _batch,
            "slice": _slice,
            "sum": _sum,
            "map": _map,
            "string": _written(filters.soft_str, "string()"),
            "tojson": _written(filters.do_tojson, "tojson()"),
            "pprint": _written(filters.do_pprint, "pprint()"),
        }
    )
    environment.globals["lipsum"] = _lipsum
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
        value = _plain(compiled(**context))
        _checked_size(value, "the value of the expression")
        return value
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
