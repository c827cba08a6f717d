"""`plinth scorecards list|results|entity`: scorecards, who reaches which level, and why an entity does not."""

from __future__ import annotations

import click

from .output import state, table


@click.group()
def scorecards():
    """Scorecards: Rego checks over entity facts, grouped in levels."""


@scorecards.command("list")
def list_():
    """Every scorecard with its levels and number of checks (a broken definition shows its error)."""
    table(state().client().scorecards.list(),
          [("name", lambda c: c["name"]), ("title", lambda c: c["title"]), ("version", lambda c: c["version"]),
           ("levels", lambda c: " → ".join(c["levels"])), ("checks", lambda c: len(c["checks"])),
           ("error", lambda c: c["error"] or "—")], empty="No scorecards.")


@scorecards.command()
@click.argument("name")
@click.option("--team", help="Only entities owned by this team.")
@click.option("--level", help="Only entities at this level (none: below the first).")
@click.option("--limit", type=int, help="Stop after this many.")
def results(name, team, level, limit):
    """Each entity you may see with its level on scorecard NAME."""
    rows = state().client().scorecards.results(name, team=team, level=level, limit=limit)
    table(rows, [("entity", lambda r: r["entity"]), ("team", lambda r: r["team"] or "—"),
                 ("level", lambda r: r["level"] or "none"), ("passing", lambda r: f"{r['passed']}/{r['total']}")],
          empty="No results (yet): entities are evaluated when they change and every night.")


@scorecards.command()
@click.argument("ref")
def entity(ref):
    """The scorecards of REF (kind:namespace/name): every check, and how to fix those that fail."""
    items = state().client().scorecards.entity(ref)
    rows = [{"scorecard": sc["scorecard"], "reached": sc["level"], **check} for sc in items for check in sc["checks"]]
    table(rows, [("scorecard", lambda r: r["scorecard"]), ("reached", lambda r: r["reached"] or "none"),
                 ("check", lambda r: r["id"]), ("check level", lambda r: r["level"]),
                 ("result", lambda r: "pass" if r["passed"] else ("pending" if r["passed"] is None else "FAIL")),
                 ("why / how to fix", lambda r: "" if r["passed"] else
                  f"{r['message']}{' (' + r['reason'] + ')' if r['reason'] else ''} {r['fix']}".strip())],
          empty="No scorecard applies to this entity.")
