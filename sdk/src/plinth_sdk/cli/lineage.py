"""`plinth lineage send FILE…`: OpenLineage events from CI (files or stdin) into the portal;
`plinth lineage graph|impact NODE_ID`: the lineage graph around a node, and what depends on it;
`plinth lineage runs JOB_ID`: every run of a job."""

from __future__ import annotations

import json
import sys

import click

from .output import console, dump, note, record, state, table


@click.group()
def lineage():
    """OpenLineage: send events; read the lineage graph and impact analysis."""


@lineage.command()
@click.argument("files", nargs=-1, required=True, type=click.File("r", encoding="utf-8"))
def send(files):
    """Send the events in FILES (`-` for stdin) as one atomic batch. Each file holds one event, a JSON
    array of events, or one event per line (NDJSON, as openlineage-python's file transport writes)."""
    events: list = []
    for handle in files:
        try:
            text = handle.read()
        except UnicodeDecodeError as exc:
            raise click.BadParameter(f"{handle.name}: not UTF-8 text ({exc.reason})", param_hint="FILES") from None
        events += _events(text, handle.name)
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


DIRECTIONS = click.Choice(["upstream", "downstream", "both"])
JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (same as -o json).")


@lineage.command()
@click.argument("node_id")
@click.option("--depth", type=click.IntRange(0, 20), default=2, show_default=True, help="Edges from the node.")
@click.option("--direction", type=DIRECTIONS, default="both", show_default=True)
@JSON_FLAG
def graph(node_id, depth, direction, as_json):
    """The lineage graph around NODE_ID (dataset:<ns>:<name>, job:<ns>:<name>, entity:<kind>:<ns>:<name>,
    run:<id> or version:<kind>:<ns>:<name>:<version>), as a tree downstream and upstream."""
    result = state().client().lineage.graph(node_id, depth=depth, direction=direction)
    if as_json or state().output != "table":
        dump(result, "json" if as_json else state().output)
        return
    nodes = {n["id"]: n for n in result.get("graph") or []}
    root = result.get("root")
    for label, edges, end in (("downstream", "outEdges", "destination"), ("upstream", "inEdges", "origin")):
        if direction in (label, "both"):
            _tree(nodes, root, edges, end, label)
    if result.get("hidden"):
        note(f"{result['hidden']} node(s) you may not see were left out.")
    if result.get("truncated"):
        note("The neighbourhood was cut at the portal's row cap: ask for less depth.")


def _label(node: dict) -> str:
    data = node.get("data") or {}
    kind = data.get("entityKind") or data.get("kind") or node.get("type", "").lower()
    run = (data.get("lastRun") or {}).get("state")
    extra = f" [{run}]" if run else ""
    team = f" · {data['team']}" if data.get("team") else ""
    return f"{kind}: {data.get('title') or node['id']}{extra}{team}  ({node['id']})"


def _tree(nodes: dict, root: str, edges: str, end: str, label: str) -> None:
    """Each node once, under the first node that reaches it (breadth first), so cycles end."""
    seen = {root}
    children: dict[str, list[str]] = {}
    frontier = [root]
    while frontier:
        following = []
        for node_id in frontier:
            for edge in (nodes.get(node_id) or {}).get(edges) or []:
                other = edge[end]
                if other not in seen and other in nodes:
                    seen.add(other)
                    children.setdefault(node_id, []).append(other)
                    following.append(other)
        frontier = following
    if not sys.stdout.isatty():
        def walk(node_id: str, indent: int) -> None:
            click.echo("  " * indent + _label(nodes[node_id]))
            for child in sorted(children.get(node_id, [])):
                walk(child, indent + 1)
        click.echo(f"# {label}")
        walk(root, 0)
        return
    from rich.markup import escape
    from rich.tree import Tree

    top = Tree(f"[bold]{escape(label)}[/bold]: {escape(_label(nodes[root]))}")

    def grow(branch, node_id: str) -> None:
        for child in sorted(children.get(node_id, [])):
            grow(branch.add(escape(_label(nodes[child]))), child)

    grow(top, root)
    console().print(top)


@lineage.command()
@click.argument("node_id")
@click.option("--depth", type=click.IntRange(0, 20), default=10, show_default=True, help="Hops downstream.")
@JSON_FLAG
def impact(node_id, depth, as_json):
    """What depends on NODE_ID: everything downstream, grouped by kind and owning team, production models
    and live deployments first."""
    result = state().client().lineage.impact(node_id, depth=depth)
    if as_json or state().output != "table":
        dump(result, "json" if as_json else state().output)
        return
    rows = [dict(item, group=f"{group['kind']} · {group['team'] or 'no team'}")
            for group in result.get("groups") or [] for item in group["items"]]
    table(rows, [("", lambda r: "!" if r["critical"] else ""), ("group", lambda r: r["group"]),
                 ("title", lambda r: r["title"]), ("hops", lambda r: r["distance"]),
                 ("why", lambda r: r["reason"]), ("id", lambda r: r["id"])],
          title=f"Impact of {result.get('root')}: {result.get('total', 0)} downstream",
          empty="Nothing depends on it.")
    if result.get("critical"):
        note(f"{len(result['critical'])} critical: " + ", ".join(i["title"] for i in result["critical"][:5]))
    if result.get("hidden"):
        note(f"{result['hidden']} node(s) you may not see were left out.")


@lineage.command()
@click.argument("node_id")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="At most this many (0: all).")
def runs(node_id, limit):
    """The runs of the job NODE_ID (`job:<namespace>:<name>`), newest first."""
    rows = state().client().lineage.runs(node_id, page_size=min(limit, 500) if limit else 500, limit=limit or None)
    table(rows, [("STATE", lambda r: r["state"]), ("STARTED", lambda r: r["startedAt"] or "—"),
                 ("ENDED", lambda r: r["endedAt"] or "—"),
                 ("SECONDS", lambda r: "—" if r["durationSeconds"] is None else f"{r['durationSeconds']:.1f}"),
                 ("RUN", lambda r: r["runId"])],
          title=f"Runs of {node_id}", empty="No runs recorded.")
