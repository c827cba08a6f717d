"""Entity references and the name grammars of Backstage's catalog model.

Owns: EntityRef, parse_ref (Backstage's `[kind:][namespace/]name` string form and the
`{kind, namespace, name}` object form) and the validators for names, namespaces, tags, label/
annotation keys and label values. Each validator has an `*_problem` twin returning a human reason
(or None), so callers can say *why* a value is invalid.

Note: these are the rules as specified for Plinth: runs joined by a *single* separator. Backstage's
own regexes are slightly looser (`a--b` and `a-.b` are valid Backstage names; `a--b` is a valid
Backstage namespace); see NAME_RE / NAMESPACE_RE to relax them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

NAME_RE = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
NAMESPACE_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
TAG_RE = re.compile(r"[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*")
KIND_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
DNS_LABEL_RE = re.compile(r"[a-z0-9]+(?:-+[a-z0-9]+)*")
MAX_NAME = 63
MAX_PREFIX = 253


def non_ascii_problem(value: str) -> str | None:
    """Name the first non-ASCII character: homoglyphs (Cyrillic 'а') and invisible characters
    (zero-width space) make two different names look identical, so they get a specific message."""
    if value.isascii():  # the common case, checked in C
        return None
    for ch in value:
        if ord(ch) > 127:
            return f"contains non-ASCII character U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')}"
    return None


def _grammar_problem(value, what: str, regex: re.Pattern, rule: str, max_len: int = MAX_NAME) -> str | None:
    if isinstance(value, str) and len(value) <= max_len and value.isascii() and regex.fullmatch(value):
        return None  # fast path: valid
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    if not value:
        return f"{what} must not be empty"
    if problem := non_ascii_problem(value):
        return f"{what} {value!r} {problem}"
    if len(value) > max_len:
        return f"{what} is {len(value)} characters long; at most {max_len} allowed"
    if not regex.fullmatch(value):
        return f"{what} {value!r} is invalid: {rule}"
    return None


def name_problem(value) -> str | None:
    return _grammar_problem(
        value, "name", NAME_RE, "use letters and digits, joined by single '-', '_' or '.'"
    )


def namespace_problem(value) -> str | None:
    return _grammar_problem(
        value, "namespace", NAMESPACE_RE, "use lowercase letters and digits, joined by single '-'"
    )


def tag_problem(value) -> str | None:
    return _grammar_problem(
        value, "tag", TAG_RE, "use lowercase letters, digits, ':', '+' or '#', joined by single '-'"
    )


def key_problem(value) -> str | None:
    """Label/annotation key: `[prefix/]name`, prefix a DNS subdomain (<= 253), name like entity names."""
    if not isinstance(value, str):
        return f"key must be a string, not {type(value).__name__}"
    if problem := non_ascii_problem(value):
        return f"key {value!r} {problem}"
    prefix, slash, name = value.rpartition("/")
    valid_prefix = 0 < len(prefix) <= MAX_PREFIX and all(
        DNS_LABEL_RE.fullmatch(p) and len(p) <= 63 for p in prefix.split(".")
    )
    if slash and not valid_prefix:
        return f"key prefix {prefix!r} is invalid: use a lowercase DNS name of at most 253 characters"
    if problem := name_problem(name):
        return f"key {value!r}: {problem}"
    return None


def label_value_problem(value) -> str | None:
    if value == "":
        return None  # empty label values are allowed (Kubernetes/Backstage rule)
    return _grammar_problem(
        value, "label value", NAME_RE, "use letters and digits, joined by single '-', '_' or '.'"
    )


def is_valid_name(value) -> bool:
    return name_problem(value) is None


def is_valid_namespace(value) -> bool:
    return namespace_problem(value) is None


def is_valid_tag(value) -> bool:
    return tag_problem(value) is None


def is_valid_key(value) -> bool:
    return key_problem(value) is None


def is_valid_label_value(value) -> bool:
    return label_value_problem(value) is None


@dataclass(frozen=True)
class EntityRef:
    kind: str  # lowercased
    namespace: str  # lowercased
    name: str  # as written (names compare case-insensitively: use key())

    def key(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}".lower()

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"


_FORM = "expected [kind:][namespace/]name"


def parse_ref(
    ref: str | dict, *, default_kind: str | None = None, default_namespace: str = "default"
) -> EntityRef:
    """Parse an entity reference; raise ValueError naming what is wrong."""
    if isinstance(ref, str):  # the same owners, systems and datasets recur across a catalog
        return _parse_ref_cached(ref, default_kind, default_namespace)
    return _parse_ref(ref, default_kind=default_kind, default_namespace=default_namespace)


@lru_cache(maxsize=65536)
def _parse_ref_cached(ref: str, default_kind: str | None, default_namespace: str) -> EntityRef:
    return _parse_ref(ref, default_kind=default_kind, default_namespace=default_namespace)


def _parse_ref(
    ref: str | dict, *, default_kind: str | None = None, default_namespace: str = "default"
) -> EntityRef:
    if isinstance(ref, dict):
        unknown = set(ref) - {"kind", "namespace", "name"}
        if unknown:
            raise ValueError(f"entity reference has unknown field(s) {sorted(map(str, unknown))}")
        kind, namespace, name = ref.get("kind"), ref.get("namespace"), ref.get("name")
        if name is None:
            raise ValueError("entity reference is missing 'name'")
        shown = repr(ref)
    elif isinstance(ref, str):
        shown = repr(ref)
        # Backstage: the first ':' separates the kind unless a '/' comes before it.
        colon, slash = ref.find(":"), ref.find("/")
        if slash != -1 and slash < colon:
            colon = -1
        kind = ref[:colon] if colon != -1 else None
        namespace = ref[colon + 1 : slash] if slash != -1 else None
        name = ref[max(colon + 1, slash + 1) :]
        if kind == "" or namespace == "" or name == "" or "/" in name:
            raise ValueError(f"entity reference {shown} is malformed: {_FORM}")
    else:
        raise ValueError(f"entity reference must be a string or a mapping, not {type(ref).__name__}")
    kind = kind if kind is not None else default_kind
    if kind is None:
        raise ValueError(f"entity reference {shown} needs a kind, e.g. 'component:{name}'")
    if not isinstance(kind, str) or not KIND_RE.fullmatch(kind) or len(kind) > 63:
        raise ValueError(f"entity reference {shown} has an invalid kind {kind!r}")
    namespace = namespace if namespace is not None else default_namespace
    if isinstance(namespace, str):
        namespace = namespace.lower()  # refs are case-insensitive; namespaces are stored lowercase
    if problem := namespace_problem(namespace):
        raise ValueError(f"entity reference {shown}: {problem}")
    if problem := name_problem(name):
        raise ValueError(f"entity reference {shown}: {problem}")
    return EntityRef(kind.lower(), namespace, name)
