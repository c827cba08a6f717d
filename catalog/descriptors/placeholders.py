"""Backstage placeholder substitution: `{$text: path}`, `{$json: path}`, `{$yaml: path}`.

Owns: finding placeholders, computing the absolute target (relative to the descriptor's file or
URL), refusing file targets outside the location root, and parsing what `read` returns. Fetching
itself (and host/SSRF policy for URLs) is the caller's `read(target) -> bytes` callback.

As in Backstage, a mapping with exactly one key is a placeholder only if the key is one of ours and
its value is a string; anything else (for example a JSON Schema `{$ref: ...}`) is left alone.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from urllib.parse import urljoin

from portal.core import urlparts

from .errors import DescriptorError, path_str
from .loader import Limits, human_bytes, parse_stream

KINDS = ("$text", "$json", "$yaml")


def _is_url(value: str) -> bool:
    return urlparts.scheme(value) in ("http", "https")


def resolve_target(target: str, *, base: str, root: str | None = None,
                   join: Callable[[str, str], str] | None = None) -> str:
    """Absolute path or URL for `target`, relative to the descriptor at `base`.

    File bases: the real path (symlinks resolved) must stay inside `root`, which defaults to the
    descriptor's own directory. Absolute http(s) targets are returned as-is for `read` to police.
    URL bases: `join(base, target)` when given (a code-host file URL's sibling, catalog.integrations;
    it raises ValueError for a target outside the repository), else urljoin.
    """
    scheme = urlparts.scheme(target)
    if scheme is None:
        raise ValueError(f"{target[:200]!r} is not a valid URL or path")
    if scheme in ("http", "https"):
        return target
    if _is_url(base):
        joined = join(base, target) if join is not None else urljoin(base, target)
        if not _is_url(joined):
            raise ValueError(f"{target!r} is not an http(s) URL")
        return joined
    if scheme and len(scheme) > 1:  # file:, ftp:, data: ... (one letter would be a Windows drive)
        raise ValueError(f"{target!r}: only relative paths or http(s) URLs are allowed")
    base_dir = os.path.dirname(os.path.realpath(base))
    resolved = os.path.realpath(os.path.join(base_dir, target))
    root_real = os.path.realpath(root) if root else base_dir
    if os.path.commonpath([resolved, root_real]) != root_real:
        raise ValueError(f"{target!r} resolves outside the location root {root_real}")
    return resolved


def resolve_placeholders(
    data: dict,
    *,
    base: str,
    read: Callable[[str], bytes],
    max_bytes: int = 2 * 1024 * 1024,
    root: str | None = None,
    errors: list[DescriptorError] | None = None,
    join: Callable[[str, str], str] | None = None,
) -> dict:
    """Return a copy of `data` with placeholders replaced.

    Raises the first DescriptorError, unless `errors` is given: then every failure is appended to
    it and the failing placeholder is left in place (validation will then flag that field).
    """
    limits = Limits(max_bytes=max_bytes)

    def walk(value, parts: list):
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key in KINDS and isinstance(arg, str):
                    try:
                        return _substitute(key, arg, path_str(parts))
                    except DescriptorError as err:
                        if errors is None:
                            raise
                        errors.append(err)
                        return value
            return {k: walk(v, [*parts, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, [*parts, i]) for i, v in enumerate(value)]
        return value

    def _substitute(kind: str, arg: str, field: str):
        def fail(message: str) -> DescriptorError:
            return DescriptorError(f"{kind} placeholder: {message}", base, None, field)

        try:
            target = resolve_target(arg, base=base, root=root, join=join)
        except ValueError as exc:
            raise fail(str(exc)) from None
        try:
            body = read(target)
        except DescriptorError as exc:
            raise fail(f"cannot read {target}: {exc.message}") from None
        except Exception as exc:  # the callback's own errors (OSError, HTTP errors...) become ours
            raise fail(f"cannot read {target}: {exc}") from None
        if len(body) > max_bytes:
            raise fail(f"{target} is larger than {human_bytes(max_bytes)}")
        try:
            text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise fail(f"{target} is not valid UTF-8 text") from None
        if kind == "$text":
            return text
        if kind == "$json":
            return _parse_json(text, target, fail, limits)
        values, errs = parse_stream(text, target, limits)
        if errs:
            raise fail(f"{target}: {errs[0]}")
        if len(values) != 1:
            raise fail(f"{target} must contain exactly one YAML document, found {len(values)}")
        return values[0][2]

    return walk(data, [])


def _parse_json(text: str, target: str, fail, limits: Limits):
    def no_constants(name):  # NaN/Infinity are not JSON
        raise ValueError(f"{name} is not allowed")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except RecursionError:
        raise fail(f"{target}: nesting too deep") from None
    except ValueError as exc:
        raise fail(f"{target} is not valid JSON: {exc}") from None
    stack: list[tuple[object, int, list]] = [(value, 1, [])]
    while stack:  # same depth cap as YAML documents
        node, depth, parts = stack.pop()
        if depth > limits.max_depth:
            raise fail(f"{target}: nesting deeper than {limits.max_depth} levels")
        if isinstance(node, float) and not math.isfinite(node):
            # `1e400` parses as infinity: JSON columns refuse it (a 500 at the write, after a dry run said yes)
            where = f" at {path_str(parts)}" if parts else ""
            raise fail(f"{target}: the number{where} is beyond a 64-bit float's range")
        if isinstance(node, dict):
            stack.extend((child, depth + 1, [*parts, key]) for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, depth + 1, [*parts, i]) for i, child in enumerate(node))
    return value
