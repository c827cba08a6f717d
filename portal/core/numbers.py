"""Ids and counts typed into URLs and forms. `str.isdigit` is True for '²', which `int` refuses, and an
id of 30 digits overflows the database's integer (SQLite raises OverflowError, PostgreSQL DataError):
both were 500s."""

from __future__ import annotations


def row_id(text) -> int | None:
    """The positive integer an id parameter holds (ASCII digits, at most 18), or None."""
    text = text if isinstance(text, str) else ""
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 18 and int(text) > 0 else None
