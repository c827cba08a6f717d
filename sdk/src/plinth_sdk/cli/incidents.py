"""`plinth incidents list|show|open|ack|resolve|reopen|note|postmortem`: incidents from the terminal."""

from __future__ import annotations

import click

from .output import record, state, table

SEVERITIES = ["sev1", "sev2", "sev3", "sev4"]
STATUSES = ["active", "open", "acknowledged", "resolved"]


def _hours(seconds) -> str:
    return "—" if seconds is None else f"{seconds / 3600:.2f} h"


def _show(incident: dict) -> None:
    client = state().client()
    record(incident, [("incident", lambda i: f"#{i['id']} {i['title']}"), ("severity", lambda i: i["severity"].upper()),
                      ("status", lambda i: i["status"]), ("team", lambda i: i["team"] or "— (platform admins)"),
                      ("entities", lambda i: ", ".join(i["entities"]) or "—"), ("source", lambda i: i["source"]),
                      ("opened", lambda i: f"{i['openedAt']} by {i['openedBy']}"),
                      ("acknowledged", lambda i: i["acknowledgedAt"] or "—"), ("resolved", lambda i: i["resolvedAt"] or "—"),
                      ("MTTA", lambda i: _hours(i["mttaSeconds"])), ("MTTR", lambda i: _hours(i["mttrSeconds"])),
                      ("postmortem", lambda i: client.url + i["postmortem"]["url"] if i["postmortem"] else "—"),
                      ("url", lambda i: client.url + i["url"])])


@click.group()
def incidents():
    """Incidents: opened by hand, by an SLO's burn or by Alertmanager."""


@incidents.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="active: open or acknowledged.")
@click.option("--severity", type=click.Choice(SEVERITIES))
@click.option("--team", help="Owned by this team.")
@click.option("--entity", help="Linking this entity (reference).")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="At most this many (0: all).")
def list_(status, severity, team, entity, limit):
    """Incidents you may see, newest first."""
    rows = state().client().incidents.list(status=status, severity=severity, team=team, entity=entity,
                                           limit=limit or None)
    table(rows, [("id", lambda i: i["id"]), ("severity", lambda i: i["severity"].upper()),
                 ("status", lambda i: i["status"]), ("title", lambda i: i["title"]),
                 ("team", lambda i: i["team"] or "—"), ("opened", lambda i: i["openedAt"]),
                 ("MTTA", lambda i: _hours(i["mttaSeconds"])), ("MTTR", lambda i: _hours(i["mttrSeconds"]))],
          empty="No incident matches.")


@incidents.command()
@click.argument("incident_id", type=int)
def show(incident_id):
    """One incident with its figures (`-o json` for the timeline and alerts)."""
    _show(state().client().incidents.get(incident_id))


@incidents.command("open")
@click.argument("title")
@click.option("--severity", type=click.Choice(SEVERITIES), required=True)
@click.option("--entity", "entities", multiple=True, help="An entity it is about (repeat; the first owns it).")
@click.option("--team", help="The owning team instead of the first entity's.")
@click.option("--summary", default="", help="What is going on.")
@click.option("--dedup-key", default="", help="Answer the unresolved incident with this key instead of a new one.")
def open_(title, severity, entities, team, summary, dedup_key):
    """Open an incident called TITLE; its owning team is notified."""
    _show(state().client().incidents.open(title, severity, entities=entities, team=team, summary=summary,
                                          dedup_key=dedup_key))


def _status_command(name: str, status: str, help_text: str):
    @click.argument("incident_id", type=int)
    @click.option("--note", default="", help="A note for the timeline.")
    def command(incident_id, note):
        _show(state().client().incidents.set_status(incident_id, status, note=note))

    command.__doc__ = help_text
    return incidents.command(name)(command)


_status_command("ack", "acknowledged", "Acknowledge INCIDENT_ID (you are on it).")
_status_command("resolve", "resolved", "Resolve INCIDENT_ID.")
_status_command("reopen", "open", "Reopen a resolved INCIDENT_ID.")


@incidents.command()
@click.argument("incident_id", type=int)
@click.argument("text")
def note(incident_id, text):
    """Add TEXT to the timeline of INCIDENT_ID."""
    _show(state().client().incidents.note(incident_id, text))


@incidents.command()
@click.argument("incident_id", type=int)
@click.argument("url")
def postmortem(incident_id, url):
    """Link the postmortem of INCIDENT_ID: a docs page URL of the portal ('' removes it)."""
    _show(state().client().incidents.postmortem(incident_id, url))
