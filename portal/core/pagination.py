"""Page sizes and cursors for every API list.

A page size outside its range is a 400 naming the range (never silently clamped, so a client
asking for 10,000 rows learns it gets at most 500). A cursor is opaque to clients: URL-safe
base64 of a small JSON object whose fields and types each list declares; anything else — not
base64, not JSON, a missing or extra field, a wrong type, a cursor of another list or order —
is a 400 "malformed or stale cursor", never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError

STALE = "Malformed or stale cursor; start again without one."
MAX_CURSOR_CHARS = 2000


def page_size(params, *, default: int, maximum: int, name: str = "limit") -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: f"'{raw[:20]}' is not an integer; use 1 to {maximum}."}) from exc
    if not 1 <= value <= maximum:
        raise ValidationError({name: f"Must be between 1 and {maximum} (got {value})."})
    return value


def encode_cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, default=_iso).encode()).decode().rstrip("=")


def _iso(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def integer(value) -> int:
    """An int a database column holds (64-bit): beyond, SQLite's driver raises OverflowError."""
    if isinstance(value, bool) or not isinstance(value, int) or not -2**63 <= value < 2**63:
        raise ValueError
    return value


def text(value) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise ValueError
    return value


def timestamp(value) -> datetime:
    """An aware time, in UTC. Cursors are written in UTC, so an offset near the ends of the calendar
    (`0001-01-01T00:00:00+01:00`) can only be made up; it would overflow when the database driver
    converts it (a 500 on SQLite), so it is refused here like any other bad cursor."""
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.utcoffset() is None:
        raise ValueError
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError from exc


def constant(expected) -> Callable[[Any], Any]:
    """A field that must hold exactly this value (the order a cursor was made for)."""

    def check(value):
        if value != expected:
            raise ValueError
        return value

    return check


def decode_cursor(raw: str, fields: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """The cursor's fields, each converted by its checker (`integer`, `text`, `timestamp`, …)."""
    try:
        if len(raw) > MAX_CURSOR_CHARS:
            raise ValueError
        payload = json.loads(base64.urlsafe_b64decode(raw.encode() + b"==="))
        if not isinstance(payload, dict) or set(payload) != set(fields):
            raise ValueError
        return {name: check(payload[name]) for name, check in fields.items()}
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise ValidationError({"cursor": STALE}) from exc


def newest_first(qs, params, limit: int) -> tuple[list, str | None]:
    """One page of a list ordered newest first (`-created_at, -id`, which the caller has applied): the
    rows after `params["cursor"]` and the cursor of the next page (None on the last)."""
    from django.db.models import Q

    if params.get("cursor"):
        after = decode_cursor(params["cursor"], {"t": timestamp, "id": integer})
        qs = qs.filter(Q(created_at__lt=after["t"]) | Q(created_at=after["t"], id__lt=after["id"]))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"t": rows[-1].created_at, "id": rows[-1].pk}) if more else None
