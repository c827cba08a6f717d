"""`plinth scorecards list|results|entity|rollup|team`: scorecards, who reaches which level, and why an entity does not."""

from __future__ import annotations

import click

from .output import note, state, table


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
@click.option("--domain", help="Only entities in this domain (a ref or a name; \"\": in no domain).")
@click.option("--unowned", is_flag=True, help="Only entities owned by no team.")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="At most this many (0: all).")
def results(name, team, level, domain, unowned, limit):
    """Each entity you may see with its level on scorecard NAME."""
    if team and unowned:
        raise click.UsageError("Give --team or --unowned, not both.")
    rows = state().client().scorecards.results(name, team=team, level=level, domain=domain, unowned=unowned,
                                               limit=limit or None)
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


@scorecards.command()
@click.argument("name")
@click.option("--by", "by", type=click.Choice(["team", "domain"]), default="team", show_default=True)
def rollup(name, by):
    """Entities per level of scorecard NAME per team or domain, with the top level's change over 7/30 days."""
    body = state().client().scorecards.rollup(name)
    levels = ["", *body["levels"]]
    rows = body["teams" if by == "team" else "domains"]

    def trend(value):
        return "—" if value is None else f"{value:+d}"

    table(rows, [(by, lambda r: r[by] or ("unowned" if by == "team" else "no domain")),
                 *[(level or "none", lambda r, level=level: r["levels"].get(level, 0)) for level in levels],
                 ("vs 7 d", lambda r: trend(r["trend7"])), ("vs 30 d", lambda r: trend(r["trend30"]))],
          title=f"{name} by {by}", empty=body.get("error") or "No results yet.")


@scorecards.command()
@click.argument("team")
def team(team):
    """TEAM's operations: each entity's levels, SLOs, open incidents and cost against its declared value."""
    body = state().client().scorecards.team_operations(team)

    def slos(e):
        s = e["slos"]
        if not s["objectives"]:
            return "—"
        burn = f" · burn {s['burnMax']:.2f}×" if s["burnMax"] is not None else ""
        return f"{s['met']}/{s['objectives']} meeting{burn}{' · alert' if s['alerting'] else ''}"

    table(body["entities"], [
        ("entity", lambda e: e["entity"]),
        ("levels", lambda e: ", ".join(f"{s['title']}: {s['level'] or 'none'}" for s in e["scorecards"]) or "—"),
        ("SLOs", slos),
        ("incidents", lambda e: f"{e['incidents']['open']} ({e['incidents']['worst']})" if e["incidents"]["open"] else "—"),
        ("cost", lambda e: ", ".join(f"{v} {c}" for c, v in e["cost"].items()) or "—"),
        ("value ÷ cost", lambda e: "—" if e["ratio"] is None else f"{e['ratio']:.1f}×")],
        title=f"{body['team']} · {body['month'] or 'no cost month'}", empty="This team owns nothing you may see.")
    for c in body["cost"]:
        budget = f" of {c['budget']} budget ({c['percent']:.0f} %)" if c["budget"] else ""
        note(f"Cost {c['currency']}: {c['total']}{budget}")
