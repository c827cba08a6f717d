"""Safe, bounded YAML loading of catalog descriptor files.

Owns: turning untrusted text/bytes into plain JSON-compatible Python data (dict/list/str/int/float/
bool/None), one `Document` per non-empty YAML document, plus the line of every mapping key.

Why a custom loader: PyYAML's safe loader still (a) accepts duplicate keys silently, (b) expands
aliases lazily, so an alias bomb only explodes when the data is walked or serialised, (c) recurses
without a depth bound, and (d) produces non-JSON values (dates, bytes, sets, NaN). We keep libyaml
for scanning/parsing (fast, iterative) but compose nodes in Python so every node, alias and nesting
level is counted *before* anything is expanded, and we resolve scalars YAML-1.2 style like Backstage
(`on`/`no` stay strings, dates stay strings).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, DocumentEndEvent
from yaml.nodes import MappingNode, SequenceNode
from yaml.resolver import Resolver

from .errors import DescriptorError, path_str

try:  # libyaml's parser when available; the pure-Python one otherwise
    from yaml._yaml import CParser as _Parser

    _PARSER_BASES: tuple = (_Parser,)
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.parser import Parser as _Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    _PARSER_BASES = (Reader, Scanner, _Parser)

_STD = "tag:yaml.org,2002:"
# Explicit tags allowed in descriptors: only those that map to JSON types. !!binary, !!set,
# !!timestamp, !!omap and every !!python/* or local (!foo) tag are refused.
ALLOWED_TAGS = {None, "!"} | {_STD + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


@dataclass
class Document:
    data: dict
    source: str
    line: int
    index: int
    field_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 2 * 1024 * 1024
    max_depth: int = 50
    max_aliases: int = 100
    max_nodes: int = 200_000


class _DocumentProblem(Exception):
    """Raised inside composition/construction for a problem confined to one document."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message, self.line = message, line


class _FileProblem(_DocumentProblem):
    """A problem that ends the whole file (the running node total is file-wide)."""


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


class _Resolver(Resolver):
    """YAML 1.2 core-schema-like implicit typing (what Backstage's JS `yaml` parser does)."""


_Resolver.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    (_STD + "bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_STD + "int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _STD + "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    (_STD + "null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_STD + "merge", r"^(?:<<)$", ["<"]),
):
    _Resolver.add_implicit_resolver(_tag, re.compile(_regexp), _first)


# YAML 1.2 core schema numbers, for explicit `!!int`/`!!float` as for implicit ones: no "_", no 1.1
# octal (`010` is ten), no binary, no sexagesimal, no sign on 0o/0x. The fast path (yaml_rs) is more
# lenient; `_RISKY` sends the forms it reads differently here.
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
# Python converts no longer integer to text (sys.get_int_max_str_digits), so none could be stored.
MAX_INT_DIGITS = 4300
_MAX_INT = 10**MAX_INT_DIGITS


class _Constructor(SafeConstructor):
    def construct_yaml_int(self, node):
        value = self.construct_scalar(node)
        line = node.start_mark.line + 1
        if not _CORE_INT.fullmatch(value):
            raise _DocumentProblem(f"invalid integer {value[:40]!r}", line)
        if len(value.lstrip("+-")) > MAX_INT_DIGITS:
            raise _DocumentProblem(f"integer too large (more than {MAX_INT_DIGITS} digits)", line)
        number = int(value[2:], 8) if value.startswith("0o") else \
            int(value[2:], 16) if value.startswith("0x") else int(value, 10)
        if not -_MAX_INT < number < _MAX_INT:
            raise _DocumentProblem(f"integer too large (more than {MAX_INT_DIGITS} digits)", line)
        return number

    def construct_yaml_float(self, node):
        value = self.construct_scalar(node)
        if not _CORE_FLOAT.fullmatch(value):
            raise _DocumentProblem(f"invalid number {value[:40]!r}", node.start_mark.line + 1)
        # NaN/Infinity (.inf, or beyond a float's range: 1e400) are not JSON; stores and schemas choke on them
        if value.lstrip("+-").lower() in (".inf", ".nan") or not math.isfinite(number := float(value)):
            raise _DocumentProblem(
                "non-finite numbers (.nan, .inf) are not allowed", node.start_mark.line + 1
            )
        return number

    def construct_merge_value(self, node):
        # `<<` where no mapping key can be (a value, a list item) is plain text, as in YAML 1.2.
        return self.construct_scalar(node)

    def construct_mapping(self, node, deep=False):
        # Check the explicit keys before PyYAML flattens merges (`<<`), where overriding is legitimate.
        seen: dict[Any, int] = {}
        if isinstance(node, MappingNode):
            for key_node, _ in node.value:
                if key_node.tag == _STD + "merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise _DocumentProblem(
                            f"duplicate key {key!r} (first defined on line {seen[key]})",
                            key_node.start_mark.line + 1,
                        )
                    seen[key] = key_node.start_mark.line + 1
                except TypeError:
                    raise _DocumentProblem(
                        "mapping keys must be scalars", key_node.start_mark.line + 1
                    ) from None
        return super().construct_mapping(node, deep=deep)


_Constructor.add_constructor(_STD + "int", _Constructor.construct_yaml_int)
_Constructor.add_constructor(_STD + "float", _Constructor.construct_yaml_float)
_Constructor.add_constructor(_STD + "map", _Constructor.construct_yaml_map)
_Constructor.add_constructor(_STD + "merge", _Constructor.construct_merge_value)


class _Loader(Composer, *_PARSER_BASES, _Constructor, _Resolver):
    """libyaml events -> Python composition with counting -> safe construction."""

    def __init__(self, text: str, limits: Limits):
        if _Parser.__module__ == "yaml._yaml":
            _Parser.__init__(self, text)
        else:  # pragma: no cover
            Reader.__init__(self, text)
            Scanner.__init__(self)
            _Parser.__init__(self)
        Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)
        self.limits = limits
        self.total_nodes = 0  # file-wide, expanded (an alias counts as the whole subtree it points to)
        self._reset_document()

    def _reset_document(self) -> None:
        self.anchors = {}
        self._aliases = 0
        self._depth = 0
        self._deepest = 0
        self._open: set[str] = set()  # anchors of collections still being composed
        self._size: dict[str, int] = {}  # anchor -> expanded node count of its subtree
        self._height: dict[str, int] = {}  # anchor -> expanded nesting height of its subtree

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1
        anchor = event.anchor
        if isinstance(event, AliasEvent):
            # Count the alias as the whole subtree it stands for, so a billion-laughs document is
            # rejected here, while composing, long before anything is expanded.
            self._aliases += 1
            if self._aliases > self.limits.max_aliases:
                raise _DocumentProblem(f"too many aliases (more than {self.limits.max_aliases})", line)
            if anchor in self._open:  # a cycle: JSON cannot represent it
                raise _DocumentProblem(f"recursive alias *{anchor}", line)
            if anchor in self._size:
                self._count(self._size[anchor], line)
                self._check_depth(self._depth + self._height[anchor], line)
            return super().compose_node(parent, index)  # PyYAML reports undefined aliases
        if event.tag not in ALLOWED_TAGS:
            raise _DocumentProblem(f"tag {_tag_name(event.tag)} is not allowed (only plain YAML data)", line)
        self._depth += 1
        self._check_depth(self._depth, line)
        self._count(1, line)
        nodes_before, deepest_before = self.total_nodes, self._deepest
        self._deepest = self._depth
        if anchor:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor:
            self._open.discard(anchor)
            self._size[anchor] = self.total_nodes - nodes_before + 1
            self._height[anchor] = self._deepest - self._depth + 1
        self._deepest = max(deepest_before, self._deepest)
        self._depth -= 1
        return node

    def _check_depth(self, depth: int, line: int) -> None:
        self._deepest = max(self._deepest, depth)
        if depth > self.limits.max_depth:
            raise _DocumentProblem(f"nesting deeper than {self.limits.max_depth} levels", line)

    def _count(self, n: int, line: int) -> None:
        self.total_nodes += n
        if self.total_nodes > self.limits.max_nodes:
            raise _FileProblem(
                f"too many YAML nodes (more than {self.limits.max_nodes}, aliases expanded)", line
            )

    def skip_document(self) -> None:
        while not self.check_event(DocumentEndEvent):
            self.get_event()
        self.get_event()
        self._reset_document()


def _decode(text: str | bytes, source: str, limits: Limits) -> str:
    raw = text if isinstance(text, bytes) else None
    if raw is None:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates in a str (a JSON body's "\ud800")
            line = text.count("\n", 0, exc.start) + 1
            raise DescriptorError(f"text is not valid Unicode (at character {exc.start})", source, line) from None
    if len(raw) > limits.max_bytes:
        raise DescriptorError(
            f"file is larger than {human_bytes(limits.max_bytes)} ({human_bytes(len(raw))})", source
        )
    if isinstance(text, str):
        return text
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DescriptorError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", source, line
        ) from None


def _key_lines(node, parts: list, out: dict[str, int], seen: set[int]) -> None:
    """Record the 1-based line of every mapping key / sequence item, by dotted path."""
    if id(node) in seen:  # aliased subtree: already walked once; do not expand it again
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node.value, str):
                path = [*parts, key_node.value]
                out.setdefault(path_str(path), key_node.start_mark.line + 1)
                _key_lines(value_node, path, out, seen)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            path = [*parts, i]
            out.setdefault(path_str(path), item.start_mark.line + 1)
            _key_lines(item, path, out, seen)


def nul_places(value, *, limit: int = 50) -> list[tuple[list, bool]]:
    """Where a parsed document holds a NUL character (YAML's "\\0", JSON's "\\u0000"), which PostgreSQL
    stores in no text or jsonb column: (path, in a key) for each, at most `limit`."""
    found: list[tuple[list, bool]] = []
    stack: list[tuple[list, object]] = [([], value)]
    while stack and len(found) < limit:
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


def parse_stream(text: str | bytes, source: str, limits: Limits = Limits()):
    """Yield-free core: returns ([(index, line, value, field_lines)], [DescriptorError]).

    File-level problems (size, encoding, YAML syntax, the file-wide node cap) give ([], [error]).
    Empty documents are skipped; per-document problems are reported and parsing continues.
    """
    try:
        decoded = _decode(text, source, limits)
        loader = _Loader(decoded, limits)
    except DescriptorError as err:
        return [], [err]
    values, errors = [], []
    index = -1
    try:
        while loader.check_node():
            index += 1
            try:
                node = loader.get_node()
            except _FileProblem:
                raise
            except _DocumentProblem as problem:
                errors.append(DescriptorError(problem.message, source, problem.line))
                loader.skip_document()
                continue
            loader._reset_document()
            if node is None:
                continue
            line = node.start_mark.line + 1
            lines: dict[str, int] = {}
            _key_lines(node, [], lines, set())  # before construction: merges rewrite the node tree
            try:
                value = loader.construct_document(node)
            except _DocumentProblem as problem:
                errors.append(DescriptorError(problem.message, source, problem.line))
                continue
            except Exception as exc:  # e.g. `!!int abc`: untrusted input must never escape as a crash
                mark = getattr(exc, "problem_mark", None) or node.start_mark
                errors.append(DescriptorError(f"invalid value: {exc}", source, mark.line + 1))
                continue
            if value is None:  # an empty document (`---` followed by nothing)
                continue
            values.append((index, line, value, lines))
    except _FileProblem as problem:
        return [], [DescriptorError(problem.message, source, problem.line)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = " ".join(p for p in (exc.context, exc.problem) if p)
        return [], [DescriptorError(f"invalid YAML: {detail}", source, mark.line + 1 if mark else None)]
    except yaml.YAMLError as exc:  # reader errors (a control character) carry an offset, not a mark
        position = getattr(exc, "position", None)
        line = decoded.count("\n", 0, position) + 1 if isinstance(position, int) else None
        return [], [DescriptorError(f"invalid YAML: {str(exc).splitlines()[0]}", source, line)]
    finally:
        loader.dispose()
    return values, errors


def load_documents(
    text: str | bytes,
    source: str,
    *,
    max_bytes: int = 2 * 1024 * 1024,
    max_depth: int = 50,
    max_aliases: int = 100,
    max_nodes: int = 200_000,
) -> tuple[list[Document], list[DescriptorError]]:
    """Parse a (multi-document) descriptor file into mapping Documents plus per-document errors."""
    limits = Limits(max_bytes, max_depth, max_aliases, max_nodes)
    values, errors = parse_stream(text, source, limits)
    docs = []
    for index, line, value, lines in values:
        if isinstance(value, dict):
            docs.append(Document(value, source, line, index, lines))
        else:
            kind = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
            errors.append(DescriptorError(f"document {index + 1} is {kind}, not a mapping", source, line))
    errors.sort(key=lambda e: e.line or 0)
    return docs, errors


# --- fast path -------------------------------------------------------------------------------
# Composing nodes in Python (for counting and key lines) costs ~1 ms per document. Most files are
# plain: no anchors, aliases, explicit tags or deep nesting. For those, libyaml composes in C and
# only construction (with the duplicate-key check and YAML 1.2 resolution above) runs in Python.
# Anything that might need the careful path takes it; so does any file whose documents fail
# validation, so that errors still carry the line of the offending key.

# Anchors, aliases and tags (`&a`, `*a`, `!!python/...` after a separator), long runs of flow
# brackets, very deep indentation, directives and document ends. Each pattern comes with strings of
# which a match must contain one: `in` finds them with memchr, so a plain file, which holds none of
# most, is scanned by the regex engine (~0.5 us per 100 bytes per pattern) only where it could match.
_RISKY = (
    (("&", "*", "!"), re.compile(r"[&*!](?<![^\s\[\{,][&*!])[^\s\[\]\{\},\"']")),
    (("[[", "[{", "{[", "{{"), re.compile(r"[\[\{]{8,}")),
    ((" " * 60,), re.compile(r"^ {60,}\S", re.MULTILINE)),
    (("%", "..."), re.compile(r"^(?:%|\.\.\.)", re.MULTILINE)),
    # Merge keys: the careful loader applies them (and checks the keys beside them).
    (("<<",), re.compile(r"<<")),
    # Plain scalars yaml_rs reads as numbers and YAML 1.2's core schema does not: `0b101`, `0X1F`, `-0x1`
    # (a token starting 0b/0o/0x in any case) and `1_000`, `_1`, `1e_3` (an underscore after a digit, a
    # sign, a dot, an exponent or a token's start). These start with a literal, which `re` scans for fast
    # (cheaper than the needles would be).
    (("0",), re.compile(r"0(?<![^\s\[\{,:+\-]0)[bBoOxX]")),
    (("_",), re.compile(r"_(?:(?<=[0-9.+\-\s\[\{,:]_)|(?<=[0-9][eE]_))")),
    # In a flow collection, `[:a]` and `[a:, b]`: libyaml (YAML 1.1) refuses what yaml_rs accepts.
    ((":",), re.compile(r":(?:[,\]\}]|(?<=[\s\[\{,]:)\S)")),
)


def _risky(text: str) -> bool:
    return any(any(needle in text for needle in needles) and pattern.search(text) for needles, pattern in _RISKY)


try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover
    _CParser = None


class _Ambiguous(Exception):
    """The fast path cannot decide; the careful loader will (and report the line)."""


class _FastLoader(*((_CParser,) if _CParser else ()), _Constructor, _Resolver):  # type: ignore[misc]
    def __init__(self, text: str):
        _CParser.__init__(self, text)
        _Constructor.__init__(self)
        _Resolver.__init__(self)

    def construct_mapping(self, node, deep=False):
        # A duplicate key shows as fewer entries than key nodes; merges (`<<`) go the careful way.
        mapping = SafeConstructor.construct_mapping(self, node, deep=deep)
        if len(mapping) != len(node.value):
            raise _Ambiguous
        return mapping


_LEAVES = (str, bool, type(None))


def within_limits(value, limits: Limits = Limits()) -> bool:
    """Whether data that did not come through the loader (an API body's `entity`) keeps to the caps a
    descriptor file is held to: depth, number of values, finite numbers, JSON types."""
    return _walk_ok(value, limits)


def _walk_ok(value, limits: Limits, depth: int = 0, count: list | None = None) -> bool:
    """Depth and size caps on constructed data (no aliases here, so nothing is shared), and JSON
    types only: a date, NaN or anything exotic sends the file down the careful path.
    Iterative, with leaves checked inline: this runs over every node of every plain file."""
    count = count if count is not None else [0]
    nodes, max_depth, max_nodes = count[0], limits.max_depth, limits.max_nodes
    stack = [(value, depth)]
    leaves, isfinite, max_int = _LEAVES, math.isfinite, _MAX_INT
    while stack:
        item, level = stack.pop()
        nodes += 1
        if level > max_depth:
            return False
        if type(item) is dict:
            children = item.values()
            try:  # every key a str: checked in C (join refuses anything else)
                "".join(item)
            except TypeError:
                return False
        elif type(item) is list:
            children = item
        elif type(item) is float:
            if not isfinite(item):
                return False
            continue
        elif type(item) is int:
            if not -max_int < item < max_int:
                return False
            continue
        elif type(item) in leaves:
            continue
        else:
            return False
        level += 1
        if level > max_depth and len(item):
            return False
        for child in children:
            kind = type(child)
            if kind is dict or kind is list or kind is float:
                stack.append((child, level))
            elif kind in leaves:
                nodes += 1
            elif kind is int:  # beyond MAX_INT_DIGITS: the careful loader refuses it
                if not -max_int < child < max_int:
                    return False
                nodes += 1
            else:
                return False
        if nodes > max_nodes:
            return False
    count[0] = nodes
    return nodes <= max_nodes


try:  # a Rust YAML parser: ~30x faster than composing in Python, used for plain files only
    import yaml_rs
except ImportError:  # pragma: no cover
    yaml_rs = None

def _first_content(segment: str) -> int:
    """The offset of a document's first character that is neither blank nor in a comment (-1: none,
    the document is empty)."""
    at = 0
    while True:
        rest = segment[at:].lstrip(" \t\n")
        if not rest:
            return -1
        at = len(segment) - len(rest)
        if rest[0] != "#":
            return at
        at = segment.find("\n", at) + 1
        if at == 0:
            return -1


def _segments(text: str) -> list[tuple[int, str]]:
    """(line of its first content, text) of each non-empty document, split at `---` lines (`---` at
    the start of a line, then a blank or the line's end): the line the careful loader gives it."""
    out, start, counted, newlines = [], 0, 0, 0
    line = 1  # of the document's first character
    at = 0 if text.startswith("---") else text.find("\n---") + 1 or -1
    while at >= 0:
        end = at + 3
        if end == len(text) or text[end] in " \t\n":
            out.append((line, text[start:at]))
            newlines += text.count("\n", counted, at)  # incremental: files hold thousands
            counted = at
            line = newlines + 1  # the next document starts on the separator's line, after `---`
            start = end
        at = text.find("\n---", end) + 1 or -1
    out.append((line, text[start:]))
    found = []
    for line, segment in out:
        first = _first_content(segment)
        if first >= 0:
            found.append((line + segment.count("\n", 0, first), segment))
    return found


def _load_rs(decoded: str, source: str, limits: Limits) -> list[Document] | None:
    segments = _segments(decoded)
    if not segments:
        return None
    result = yaml_rs.loads(decoded, parse_datetime=False)
    if len(segments) == 1 and isinstance(result, list):
        return None  # a list at the root, not a list of documents: the careful loader says so
    values = [result] if len(segments) == 1 else result
    if not isinstance(values, list):
        return None
    values = [v for v in values if v is not None]  # comment-only documents
    if len(values) != len(segments):
        return None
    count = [0]
    docs = []
    for index, ((line, _), value) in enumerate(zip(segments, values, strict=True)):
        if not isinstance(value, dict) or not _walk_ok(value, limits, 0, count):
            return None
        docs.append(Document(value, source, line, index, {}))
    return docs


def load_documents_fast(
    text: str | bytes, source: str, *, max_bytes: int = 2 * 1024 * 1024, max_depth: int = 50,
    max_nodes: int = 200_000,
) -> list[Document] | None:
    """The documents of a plain file, or None when the careful `load_documents` must decide."""
    if _CParser is None:
        return None
    limits = Limits(max_bytes, max_depth, 100, max_nodes)
    try:
        decoded = _decode(text, source, limits)
    except DescriptorError:
        return None
    if _risky(decoded):
        return None
    if yaml_rs is not None:
        try:
            return _load_rs(decoded, source, limits)
        except Exception:  # duplicate keys, odd syntax…: the careful path reports it with a line
            return None
    loader = _FastLoader(decoded)
    docs: list[Document] = []
    count = [0]
    try:
        index = -1
        while loader.check_node():
            index += 1
            node = loader.get_node()
            if node is None:
                continue
            value = loader.construct_document(node)
            if value is None:
                continue
            if not isinstance(value, dict) or not _walk_ok(value, limits, 0, count):
                return None
            docs.append(Document(value, source, node.start_mark.line + 1, index, {}))
    except Exception:  # any doubt (syntax, duplicates, odd scalars): the careful path reports it
        return None
    finally:
        loader.dispose()
    return docs
