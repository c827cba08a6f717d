"""`plinth insights events --type …`: the portal's usage analytics (GET /api/v1/insights/events)."""

from __future__ import annotations

import click

from .output import dump, state, table

TYPES = ["active_users", "top_templates", "top_searches", "top_entities", "top_docs", "funnel"]


@click.group()
def insights():
    """Usage analytics of the portal."""


@insights.command()
@click.option("--type", "type_", required=True, type=click.Choice(TYPES), help="What to show.")
@click.option("--start-date", help="First day, YYYY-MM-DD (default: 29 days before the end).")
@click.option("--end-date", help="Last day, YYYY-MM-DD (default: today).")
@click.option("--grouping", type=click.Choice(["hourly", "daily", "weekly", "monthly"]),
              help="Periods of active_users (default from the range).")
@click.option("--team", help="One of your teams (platform admins: any team; default: all you may see).")
@click.option("--limit", type=click.IntRange(1, 100), help="Rows of the top lists (default 10).")
@click.option("--per-user", is_flag=True, help="Per-user rows of active_users (platform admins only).")
def events(type_, start_date, end_date, grouping, team, limit, per_user):
    """Rows of one analytics type; `-o json` prints the API's whole answer."""
    body = state().client().insights.events(type_, start_date=start_date, end_date=end_date, grouping=grouping,
                                            team=team, limit=limit, per_user=per_user)
    if state().output != "table":
        dump(body, state().output)
        return
    rows = body.get("data") or []
    columns = [key for key in (rows[0] if rows else {}) if not isinstance(rows[0][key], dict | list)]
    table(rows, [(c, lambda r, c=c: r.get(c)) for c in columns],
          title=f"{type_} {body.get('start_date')} – {body.get('end_date')} ({body.get('grouping')})",
          empty="No data for this range.")
