"""URLs and paths as people type them, split without surprises: `urllib.parse.urlsplit` raises
ValueError for text it cannot read as a URL (an unbalanced '[' or ']' in the host part, a host that
NFKC-normalises to a separator), which a descriptor, an annotation, mkdocs.yml or a Markdown link can
hold. Callers say what is wrong with the value instead of failing."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def split(value: str) -> SplitResult | None:
    """`urlsplit(value)`, or None when the value cannot be read as a URL."""
    try:
        return urlsplit(value)
    except ValueError:
        return None


def scheme(value: str) -> str | None:
    """The lower-case scheme ("" for none), or None when the value cannot be read as a URL."""
    parts = split(value)
    return None if parts is None else parts.scheme.lower()
