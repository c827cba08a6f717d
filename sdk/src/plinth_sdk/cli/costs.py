"""`plinth costs show|import`: cost per team, entity, kind or domain; import a FOCUS export."""

from __future__ import annotations

import time

import click

from ..errors import WaitTimeout
from .errors import CheckFailed
from .output import note, record, state, table

GROUPS = ["team", "entity", "kind", "domain", "bucket"]


@click.group()
def costs():
    """Costs from FOCUS exports, allocated to entities and teams (per currency, never added together)."""


@costs.command()
@click.argument("ref", required=False)
@click.option("--month", help="YYYY-MM (default: the latest month with data).")
@click.option("--group", type=click.Choice(GROUPS), default="team", show_default=True)
@click.option("--team", help="Only this team's costs.")
@click.option("--currency", help="Only this currency (ISO 4217).")
def show(ref, month, group, team, currency):
    """A month's cost per --group; with REF (kind:namespace/name), that entity's months and declared value."""
    client = state().client()
    if ref:
        body = client.costs.entity(ref)
        columns = [("month", lambda r: r["month"]), ("currency", lambda r: r["currency"]),
                   ("effective", lambda r: r["effective"]), ("billed", lambda r: r["billed"])]
        usage = body.get("predictions") or {}
        if usage.get("metric"):
            columns += [("predictions", lambda r: "–" if r.get("predictions") is None else f"{r['predictions']:,.0f}"),
                        ("per 1k predictions", lambda r: r.get("costPer1kPredictions") or "–")]
        table(body["months"], columns, title=body["entity"], empty="No cost allocated to this entity.")
        if usage.get("error"):
            note(usage["error"])
        value = body.get("value") or {}
        if value.get("error"):
            note(f"Declared value is invalid: {value['error']}")
        elif value:
            note(f"Declared value: {value['monthly']} {value['currency']} per month ({value['kpi']}).")
        return
    body = client.costs.list(month=month, group=group, team=team, currency=currency)
    table(body["items"], [(group, lambda r: r["key"] or "—"), ("currency", lambda r: r["currency"]),
                          ("effective", lambda r: r["effective"]), ("billed", lambda r: r["billed"]),
                          ("lines", lambda r: r["lines"])],
          title=f"Costs {body['month']} by {body['group']}", empty="No cost data for this month.")
    if body.get("hidden"):
        note(f"{body['hidden']} private entities of other teams are left out.")


@costs.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--provider", required=True, help="Short name of the source, e.g. aws (re-importing a provider's "
              "billing period replaces it).")
@click.option("--wait/--no-wait", default=False, help="Wait until the worker has imported it.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait.")
def import_(file, provider, wait, timeout):
    """Import FILE, a FOCUS 1.x export (CSV or Parquet), for --provider (platform admins). Exit 1 when
    the import failed, or when --wait timed out before it finished."""
    client = state().client()
    imp = client.costs.upload(file, provider=provider)
    deadline = time.monotonic() + timeout
    while wait and imp["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1.0)
        imp = client.costs.import_status(imp["id"])
    record(imp, [("import", lambda r: r["id"]), ("file", lambda r: r["file"]), ("provider", lambda r: r["provider"]),
                 ("status", lambda r: r["status"]), ("rows", lambda r: r["rows"]),
                 ("periods", lambda r: ", ".join(r["periods"]) or "—"),
                 ("totals", lambda r: "; ".join(f"{t['effective']} {c}" for c, t in r["totals"].items()) or "—")])
    if imp["status"] == "failed":
        raise CheckFailed(f"import {imp['id']} failed: {imp['error'] or 'see the portal'}")
    if wait and imp["status"] in ("queued", "running"):
        raise WaitTimeout(f"import {imp['id']} did not finish within {timeout:g} s (still {imp['status']})")
