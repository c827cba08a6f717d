"""Rendering: `--output table|json|yaml`. Tables use Rich (imported only to draw one); JSON and YAML
print the API's own objects (`raw`), so scripts see every field."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click


def state() -> Any:
    return click.get_current_context().find_root().obj


def plain(value: Any) -> Any:
    """JSON-ready data of a result (its API JSON when it has one)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        raw = getattr(value, "raw", None)
        return raw if raw is not None else dataclasses.asdict(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def dump(data: Any, fmt: str) -> None:
    if fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(plain(data), sort_keys=False, allow_unicode=True).rstrip())
    else:
        click.echo(json.dumps(plain(data), indent=2, default=str, ensure_ascii=False))


def console(err: bool = False):
    from rich.console import Console

    st = state()
    return Console(stderr=err, no_color=not st.color, color_system="auto" if st.color else None,
                   highlight=False, soft_wrap=not (sys.stderr if err else sys.stdout).isatty())


def table(rows: Iterable[Any], columns: Sequence[tuple[str, Any]], *, title: str | None = None,
          empty: str = "Nothing found.") -> None:
    """Rows (results) as a table (`columns`: header, function of a row), or a JSON/YAML list. For
    json/yaml the rows stream out as they arrive, so a long listing never sits in memory."""
    fmt = state().output
    if fmt == "json":
        _stream_json(rows)
        return
    if fmt == "yaml":
        import yaml

        for row in rows:
            click.echo(yaml.safe_dump([plain(row)], sort_keys=False, allow_unicode=True).rstrip())
        return
    if not sys.stdout.isatty():
        _plain_table(rows, columns, empty)
        return
    from rich.table import Table

    grid = Table(title=title, show_edge=False, header_style="bold" if state().color else None,
                 box=None, pad_edge=False)
    for header, _ in columns:
        grid.add_column(header, overflow="fold")
    count = 0
    for row in rows:
        grid.add_row(*[_cell(fn(row)) for _, fn in columns])
        count += 1
    if not count:
        click.echo(empty, err=True)
        return
    console().print(grid)


def _plain_table(rows: Iterable[Any], columns: Sequence[tuple[str, Any]], empty: str) -> None:
    """For pipes and CI logs: aligned columns, nothing wrapped or cut (a 250-character ref stays whole).
    The rows are held to size the columns; scripts wanting a stream use `-o json`."""
    cells = [[_cell(fn(row)).replace("\n", " ") for _, fn in columns] for row in rows]
    if not cells:
        click.echo(empty, err=True)
        return
    headers = [header for header, _ in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for line in [headers, *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def _stream_json(rows: Iterable[Any]) -> None:
    """A JSON array, a row at a time. Nothing reaches stdout before the first row has arrived: a
    listing that fails at its first request leaves stdout empty, not holding a lone `[`."""
    out = sys.stdout
    first = True
    for row in rows:
        out.write(("[\n  " if first else ",\n  ") + json.dumps(plain(row), default=str, ensure_ascii=False))
        first = False
    out.write("\n]\n" if not first else "[]\n")
    out.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def record(obj: Any, fields: Sequence[tuple[str, Any]]) -> None:
    """One object: key/value lines for a table, its JSON/YAML otherwise."""
    fmt = state().output
    if fmt != "table":
        dump(obj, fmt)
        return
    width = max(len(k) for k, _ in fields)
    for key, fn in fields:
        value = _cell(fn(obj))
        label = click.style(f"{key:<{width}}", bold=True) if state().color else f"{key:<{width}}"
        click.echo(f"{label}  {value}")


def note(message: str) -> None:
    """A line for people (stderr), never mixed into the data on stdout."""
    click.echo(message, err=True)
