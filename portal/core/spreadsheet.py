"""Cells of the CSV downloads, safe to open in a spreadsheet: a text cell starting with = + - @ or a
tab/CR (a search query typed as `=cmd|' /C calc'!A0`, an audit target, an asset's name) is prefixed
with a quote so it stays text. Numbers stay numbers (-3 is not a formula)."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
