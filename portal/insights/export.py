"""CSV out of analytics rows, each cell spreadsheet-safe (`portal.core.spreadsheet.safe_cell`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from portal.core.spreadsheet import safe_cell

__all__ = ["safe_cell", "tables_to_csv", "to_csv"]


def to_csv(rows: Iterable[dict]) -> str:
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    # CRLF rows (RFC 4180): the writer then quotes a field holding a bare CR, which would otherwise end
    # the row in a spreadsheet and start the next one with whatever follows it (e.g. "=cmd|…").
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()


def tables_to_csv(tables: Iterable[tuple[str, list[str], list[list]]]) -> str:
    """A dashboard's tables in one CSV: a section per table, whose first column (`table`) names it, a
    blank line between sections (the Insights pages' downloads)."""
    out = io.StringIO()
    # CRLF rows (RFC 4180): the writer quotes a field containing either character, so a carriage
    # return inside a cell cannot end the row early.
    writer = csv.writer(out, lineterminator="\r\n")
    for i, (name, headers, rows) in enumerate(tables):
        if i:
            writer.writerow([])
        writer.writerow(["table", *headers])
        for row in rows:
            writer.writerow([safe_cell(name), *(safe_cell(cell) for cell in row)])
    return out.getvalue()
