"""`plinth slos [--entity REF] [--team T]` and `plinth slos entity REF`: SLOs with their budgets and burns."""

from __future__ import annotations

import click

from .output import state, table


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _burns(row) -> str:
    return " ".join(f"{w}:{'—' if v is None else f'{v:.1f}x'}" for w, v in row["burnRates"].items())


def _state(row) -> str:
    if row["problem"]:
        return f"{'STALE ' if row['stale'] else ''}{row['error']}"
    firing = [f"{a['severity']} {a['long']}/{a['short']}" for a in row["alerts"] if a["firing"]]
    return ("ALERT " + ", ".join(firing)) if firing else "ok"


COLUMNS = [("entity", lambda r: r["entity"]), ("slo", lambda r: f"{r['name']}/{r['objective']}"),
           ("target", lambda r: _pct(r["target"])), ("sli", lambda r: _pct(r["sli"])),
           ("budget left", lambda r: _pct((r["errorBudget"] or {}).get("remaining"))),
           ("burn rates", _burns), ("state", _state)]


@click.group(invoke_without_command=True)
@click.option("--entity", help="Only this entity's SLOs (kind:namespace/name).")
@click.option("--team", help="Only SLOs of entities owned by this team.")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="At most this many (0: all).")
@click.pass_context
def slos(ctx, entity, team, limit):
    """SLOs you may see: objective, SLI, error budget left, burn rates over 1h/6h/1d/3d, alerts."""
    if ctx.invoked_subcommand is None:
        table(state().client().slos.list(entity=entity, team=team, limit=limit or None), COLUMNS,
              empty="No SLOs (an entity declares them with the plinth.dev/openslo annotation).")


@slos.command()
@click.argument("ref")
def entity(ref):
    """The SLOs of REF (kind:namespace/name), and its OpenSLO file's problems."""
    body = state().client().slos.entity(ref)
    for problem in body.get("fileErrors") or []:
        click.echo(f"{body.get('file')}: {problem}", err=True)
    table(body.get("items") or [], COLUMNS, empty="This entity declares no SLO.")
