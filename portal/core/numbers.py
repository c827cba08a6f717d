"""Ids and counts typed into URLs and forms. `str.isdigit` is True for '²', which `int` refuses, and an
id of 30 digits overflows the database's integer (SQLite raises OverflowError, PostgreSQL DataError):
both were 500s."""

from __future__ import annotations


def digits(text: str) -> bool:
    """Only the ASCII digits 0-9, at least one: what `int` reads (`str.isdigit` alone accepts '²')."""
    return text.isascii() and text.isdigit()


def row_id(text) -> int | None:
    """The positive integer an id parameter holds (ASCII digits, at most 18), or None."""
    text = text if isinstance(text, str) else ""
    return int(text) if digits(text) and len(text) <= 18 and int(text) > 0 else None
