"""`plinth lineage send FILE…`: OpenLineage events from CI (files or stdin) into the portal."""

from __future__ import annotations

import json

import click

from .output import note, record, state


@click.group()
def lineage():
    """OpenLineage: send run, dataset and job events."""


@lineage.command()
@click.argument("files", nargs=-1, required=True, type=click.File("r", encoding="utf-8"))
def send(files):
    """Send the events in FILES (`-` for stdin) as one atomic batch. Each file holds one event, a JSON
    array of events, or one event per line (NDJSON, as openlineage-python's file transport writes)."""
    events: list = []
    for handle in files:
        events += _events(handle.read(), handle.name)
    if not events:
        raise click.UsageError("no events in the given files")
    result = state().client().lineage.send(events)
    record(result, [("received", lambda r: r.get("received")), ("stored", lambda r: r.get("stored")),
                    ("duplicates", lambda r: r.get("duplicates")),
                    ("runs", lambda r: ", ".join(r.get("runs") or []) or "—")])
    if result.get("duplicates"):
        note(f"{result['duplicates']} event(s) were sent before: stored once.")


def _events(text: str, name: str) -> list:
    """The events of one file; a file that is not JSON is a usage error naming the file and line."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        data = None
        lines = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"{name}: line {number}: not JSON ({exc.msg})", param_hint="FILES") from None
        return _objects(lines, name)
    return _objects(data if isinstance(data, list) else [data], name)


def _objects(items: list, name: str) -> list:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise click.BadParameter(f"{name}: event {index} is not a JSON object", param_hint="FILES")
    return items
