"""Every write of the incidents app: opening (by hand, by a service such as an SLO's page-level burn,
by Alertmanager's webhook), acknowledging, resolving and reopening, notes, the postmortem link.
Keyword-only, one transaction each, an audit event per change; the owning team is notified through
governance's outbox (published after commit, relayed if the broker is down).

Who may do what is decided in `portal.accounts.permissions` (`may_open_incident`,
`may_open_incident_for_team`, `may_respond_incident`); an incident or entity the actor may not see
answers 404 like a missing one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.urls import Resolver404, resolve
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core import urlparts
from portal.core.audit import audit_record
from portal.governance import outbox

from . import alertmanager, conf, selectors
from .models import (
    ACTIVE,
    AlertStatus,
    EntryKind,
    Incident,
    IncidentAlert,
    IncidentEntity,
    Severity,
    Source,
    Status,
    TimelineEntry,
)

log = logging.getLogger("plinth.incidents")
SYSTEM_LABEL = "plinth"
ALERTMANAGER_LABEL = "alertmanager"

# status wanted -> statuses it may be reached from
TRANSITIONS = {
    Status.ACKNOWLEDGED: (Status.OPEN,),
    Status.RESOLVED: (Status.OPEN, Status.ACKNOWLEDGED),
    Status.OPEN: (Status.RESOLVED,),  # reopen
}
VERBS = {Status.ACKNOWLEDGED: "acknowledge", Status.RESOLVED: "resolve", Status.OPEN: "reopen"}


class IncidentError(Exception):
    """A refusal with its HTTP status and a message naming what is wrong (and the field, if one)."""

    def __init__(self, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


def _label(actor) -> str:
    return actor.get_username() if getattr(actor, "is_authenticated", False) and actor.pk else SYSTEM_LABEL


def _person(actor):
    return actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None


def clean_text(value: Any, *, field: str, label: str, limit: int, required: bool = False) -> str:
    if value is not None and not isinstance(value, str):
        raise IncidentError(f"{label} must be text.", field=field)
    text = (value or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise IncidentError(f"{label} is required.", field=field)
    if len(text) > limit:
        raise IncidentError(f"{label} is {len(text):,} characters long; at most {limit:,} are accepted.", field=field)
    return text


def clean_severity(value: Any) -> str:
    text = str(value or "").strip().lower() if isinstance(value, str) else ""
    if text not in Severity.values:
        shown = repr(value)[:30] if isinstance(value, str) else "missing" if value is None else "not text"
        raise IncidentError(f"Unknown severity {shown}; use one of: {', '.join(Severity.values)}.", field="severity")
    return text


@dataclass
class Resolved:
    entities: list[Entity] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # as given: malformed, missing, or not visible


def resolve_entities(actor, refs: list[Any]) -> Resolved:
    """The entities `refs` name that `actor` may see (None: the system, which sees every entity), in the
    order given, without repeats; one query. Entity instances are taken as they are."""
    out = Resolved()
    wanted: list[tuple[str | None, str]] = []  # (key or None when malformed, as given)
    for ref in refs:
        if isinstance(ref, Entity):
            wanted.append((ref.ref, ref.ref))
        else:
            text = str(ref or "")[:200]
            wanted.append((selectors.ref_key(text) if isinstance(ref, str) else None, text))
    keys = {k for k, _ in wanted if k}
    found: dict[str, Entity] = {}
    if keys:
        qs = Entity.objects.all() if actor is None else catalog_selectors.visible_entities(actor)
        found = {e.ref: e for e in qs.select_related("owner_team").filter(ref__in=keys)}
    for key, given in wanted:
        entity = found.get(key) if key else None
        if entity is None:
            if given not in out.unknown:
                out.unknown.append(given)
        elif entity not in out.entities:
            out.entities.append(entity)
    return out


def _entry(incident: Incident, kind: str, text: str, *, actor=None, label: str = "", at: datetime | None = None
           ) -> TimelineEntry:
    return TimelineEntry(incident=incident, at=at or timezone.now(), kind=kind, actor=_person(actor),
                         actor_label=label or _label(actor), text=text[: conf.get("MAX_TEXT_CHARS")])


def _notify(incident: Incident, event: str) -> None:
    outbox.enqueue(None, f"incident:{incident.pk}:{event}:{incident.version}", "portal.incidents.tasks.notify",
                   [incident.pk, event, incident.version])


def _shown(entity: Entity) -> str:
    """An entity as the timeline names it: a private one's name stays out of text every reader sees."""
    return entity.ref if entity.visibility == permissions.Visibility.INTERNAL else "a private entity"


def _unlinked_text(ref: str, hidden: frozenset[str]) -> str:
    """A reference the sender could not link, named unless it is an entity they may not see (`hidden`):
    its name would reach every reader of the incident."""
    if ref in hidden:
        return "Not linked: an entity label names an entity this sender may not see"
    return f"Not linked: {ref!r} names no entity in the catalog (or one this sender may not see)"


def _hidden_refs(refs: list[str]) -> frozenset[str]:
    """Those of `refs` (as given) that name an entity in the catalog: one query, none without refs."""
    keys = {ref: selectors.ref_key(ref) for ref in refs}
    wanted = {k for k in keys.values() if k}
    found = set(Entity.objects.filter(ref__in=wanted).values_list("ref", flat=True)) if wanted else set()
    return frozenset(ref for ref, key in keys.items() if key in found)


def _create(*, title: str, severity: str, source: str, dedup_key: str, summary: str, entities: list[Entity],
            team: Team | None, actor, label: str, at: datetime, unknown: list[str], group_key: str = "",
            external_url: str = "", hidden: frozenset[str] = frozenset()) -> Incident:
    """Write an incident with its links and first timeline entries (inside the caller's transaction).
    Raises IntegrityError when another unresolved incident holds `dedup_key`."""
    first = entities[0] if entities else None
    owner_id = team.pk if team is not None else (first.owner_team_id if first else None)
    incident = Incident(title=title, summary=summary, severity=severity, source=source, dedup_key=dedup_key,
                        group_key=group_key, external_url=external_url, owner_team_id=owner_id,
                        visibility=first.visibility if first else permissions.Visibility.INTERNAL,
                        opened_at=at, opened_by=_person(actor), opened_by_label=label)
    with transaction.atomic():
        incident.save()
    IncidentEntity.objects.bulk_create([IncidentEntity(incident=incident, entity=e, position=i)
                                        for i, e in enumerate(entities)])
    # Entities are not named in the text: a reader sees the links they may see, never a private one's name.
    about = f" on {len(entities)} entit{'y' if len(entities) == 1 else 'ies'}" if entities else ""
    entries = [_entry(incident, EntryKind.OPENED, f"Opened as {severity.upper()}{about} "
                      f"({Source(source).label.lower()})", actor=actor, label=label, at=at)]
    entries += [_entry(incident, EntryKind.UNLINKED, _unlinked_text(ref, hidden), actor=actor, label=label, at=at)
                for ref in unknown]
    TimelineEntry.objects.bulk_create(entries)
    audit_record(actor=_person(actor), actor_label=label, action="incidents.open", target=f"incident:{incident.pk}",
                 after={"title": title, "severity": severity, "source": source, "entities": [e.ref for e in entities],
                        "team": team.name if team else (first.owner_team.name if first and first.owner_team else None),
                        "dedup_key": dedup_key, "unlinked": unknown})
    _notify(incident, "opened")
    return incident


def _active_with_key(dedup_key: str, *, lock: bool = False) -> Incident | None:
    if not dedup_key:
        return None
    qs = Incident.objects.filter(dedup_key=dedup_key, status__in=ACTIVE)
    return (qs.select_for_update() if lock else qs).first()


def _team(actor, name: Any) -> Team | None:
    if name in (None, ""):
        return None
    team = Team.objects.filter(name=str(name).strip().lower()[:63]).first() if isinstance(name, str) else None
    if team is None:
        raise IncidentError(f"No team {str(name)[:63]!r}.", field="team")
    if actor is not None and not permissions.may_open_incident_for_team(actor, team.pk):
        raise IncidentError(f"You may open incidents for a team only where you are a member, maintainer or admin "
                            f"(not {team.name}).", status=403, field="team")
    return team


@transaction.atomic
def incident_open(*, actor, title: Any, severity: Any, entities: list[Any] | None = None, team: Any = None,
                  summary: Any = "", source: str = Source.MANUAL, dedup_key: str = "") -> tuple[Incident, bool]:
    """Open an incident by hand or from the API → (incident, created). `entities`: references (or Entity
    instances) the actor may see — a missing or hidden one answers 404 and nothing is written; the first
    gives the owning team and visibility unless `team` (a team name) is chosen. With `dedup_key`, an
    unresolved incident holding it is answered instead (created False). `actor` None: the system."""
    refs = list(entities or [])
    if len(refs) > 20:
        raise IncidentError(f"{len(refs)} entities; link at most 20 (the rest can be named in the summary).",
                            field="entities")
    found = resolve_entities(actor, refs)
    if found.unknown and actor is not None:  # first: a hidden entity is missing, whoever asks
        raise IncidentError(f"No entity {found.unknown[0]!r}.", status=404, field="entities")
    if actor is not None and not permissions.may_open_incident(actor):
        raise PermissionDenied("Opening incidents needs a member, maintainer or admin role in a team")
    title = clean_text(title, field="title", label="The title", limit=conf.get("MAX_TITLE_CHARS"), required=True)
    severity = clean_severity(severity)
    summary = clean_text(summary, field="summary", label="The summary", limit=conf.get("MAX_TEXT_CHARS"))
    if source not in Source.values:
        raise IncidentError(f"Unknown source {str(source)[:30]!r}.", field="source")
    chosen = _team(actor, team)
    if actor is not None and not found.entities and chosen is None:
        raise IncidentError("Name the entity the incident is about, or the team that owns it.", field="entities")
    dedup_key = str(dedup_key or "")[:200]
    existing = _active_with_key(dedup_key, lock=True)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            incident = _create(title=title, severity=severity, source=source, dedup_key=dedup_key, summary=summary,
                               entities=found.entities, team=chosen, actor=actor, label=_label(actor),
                               at=timezone.now(), unknown=found.unknown)
    except IntegrityError:  # the same key opened in parallel: the other one stands
        existing = _active_with_key(dedup_key)
        if existing is None:
            raise
        return existing, False
    return incident, True


def open_incident(*, title: str, severity: str, source: str, dedup_key: str, entities: list[Any], summary: str,
                  actor=None) -> Incident:
    """For other apps (an SLO's page-level burn, docs/operations.md): idempotent per `dedup_key` while an
    incident holding it is unresolved. `entities`: Entity instances or references; with `actor` None
    (the system) a reference that names nothing is kept as a "not linked" timeline entry."""
    incident, _ = incident_open(actor=actor, title=title, severity=severity, entities=entities, summary=summary,
                                source=source, dedup_key=dedup_key)
    return incident


def get_visible(actor, incident_id: Any) -> Incident:
    try:
        pk = int(incident_id)
    except (TypeError, ValueError):
        raise IncidentError("No such incident.", status=404) from None
    incident = selectors.visible_incidents(actor).filter(pk=pk).first()
    if incident is None:
        raise IncidentError("No such incident.", status=404)
    return incident


def _responder(actor, incident_id: Any) -> Incident:
    """The incident locked for a change by `actor`: 404 when not visible, 403 when not a responder."""
    incident = get_visible(actor, incident_id)
    if not permissions.may_respond_incident(actor, incident):
        raise IncidentError("Only members, maintainers and admins of the owning team (and platform admins) "
                            "respond to this incident.", status=403)
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _set_status(incident: Incident, status: str, *, actor, label: str, note: str, at: datetime) -> TimelineEntry:
    """Move the incident (the caller checked the transition) and say so in the timeline."""
    before = incident.status
    incident.status = status
    if status == Status.ACKNOWLEDGED:
        incident.acknowledged_at = incident.acknowledged_at or at
        kind, text = EntryKind.ACKNOWLEDGED, "Acknowledged"
    elif status == Status.RESOLVED:
        if incident.acknowledged_at is None and _person(actor) is not None:
            incident.acknowledged_at = at  # a person resolving it has acknowledged it
        incident.resolved_at = at
        kind, text = EntryKind.RESOLVED, "Resolved"
    else:
        incident.resolved_at = None
        kind, text = EntryKind.REOPENED, "Reopened"
    incident.version += 1
    incident.save(update_fields=["status", "acknowledged_at", "resolved_at", "version", "updated_at"])
    audit_record(actor=_person(actor), actor_label=label, action=f"incidents.{VERBS[Status(status)]}",
                 target=f"incident:{incident.pk}", before={"status": before}, after={"status": status, "note": note})
    return _entry(incident, kind, f"{text}: {note}" if note else text, actor=actor, label=label, at=at)


@transaction.atomic
def incident_transition(*, actor, incident_id: Any, status: Any, note: Any = "") -> tuple[Incident, bool]:
    """Acknowledge (from open), resolve (from open or acknowledged) or reopen (`status="open"`, from
    resolved) → (incident, changed). Asking for the status it already has changes nothing (a double
    click); any other move is a 409 naming the current status. A person resolving an unacknowledged
    incident acknowledges it at the same moment; reopening keeps the first acknowledgement and clears
    the resolution, so MTTR runs to the final one."""
    wanted = str(status or "").strip().lower() if isinstance(status, str) else ""
    if wanted not in TRANSITIONS:
        raise IncidentError(f"Unknown status {str(status)[:30]!r}; use one of: {', '.join(Status.values)}.",
                            field="status")
    note = clean_text(note, field="note", label="The note", limit=conf.get("MAX_TEXT_CHARS"))
    incident = _responder(actor, incident_id)
    if incident.status == wanted:
        return incident, False
    if incident.status not in TRANSITIONS[Status(wanted)]:
        raise IncidentError(f"The incident is {incident.status}; it cannot be {VERBS[Status(wanted)]}d from there.",
                            status=409, field="status")
    if wanted == Status.OPEN and incident.dedup_key:
        _refuse_reopen(_active_with_key(incident.dedup_key))
    try:
        # A savepoint: an incident opened for the same key since the check above (an alert or an SLO
        # at the same moment; the partial unique index refuses the second) is the same 409, not a 500.
        with transaction.atomic():
            entry = _set_status(incident, wanted, actor=actor, label=_label(actor), note=note, at=timezone.now())
    except IntegrityError:
        if wanted != Status.OPEN or not incident.dedup_key:
            raise
        _refuse_reopen(_active_with_key(incident.dedup_key))
        raise
    entry.save()
    if wanted == Status.OPEN:
        _notify(incident, "reopened")
    return incident, True


def _refuse_reopen(other: Incident | None) -> None:
    if other is not None:
        raise IncidentError(f"Incident #{other.pk} is open for the same alert group or SLO; reopen nothing, "
                            "work on that one.", status=409, field="status")


@transaction.atomic
def incident_note(*, actor, incident_id: Any, text: Any) -> TimelineEntry:
    """A responder's note in the timeline."""
    text = clean_text(text, field="text", label="The note", limit=conf.get("MAX_TEXT_CHARS"), required=True)
    incident = _responder(actor, incident_id)
    entry = _entry(incident, EntryKind.NOTE, text, actor=actor)
    entry.save()
    Incident.objects.filter(pk=incident.pk).update(updated_at=entry.at)
    return entry


def docs_page_for(actor, url: str):
    """(entity, page) for a portal docs URL (`/docs/<kind>/<namespace>/<name>/<path>`, absolute or not)
    that exists and the actor may see; IncidentError naming `postmortem` otherwise."""
    from portal.techdocs import selectors as techdocs_selectors

    parts = urlparts.split(url.strip())
    path = unquote(parts.path or "") if parts is not None else ""
    try:
        match = resolve(path) if parts is not None else None
    except Resolver404:
        match = None
    if match is None or match.view_name not in ("techdocs:page", "techdocs:site"):
        raise IncidentError("The postmortem must be a docs page of the portal, e.g. "
                            "/docs/component/default/fraud-api/postmortems/2026-12-03/.", field="postmortem")
    kw = match.kwargs
    entity = catalog_selectors.entity_by_name(actor, kw["kind"], kw["namespace"], kw["name"])
    page = techdocs_selectors.page_for(entity, kw.get("path", "")) if entity is not None else None
    if page is None:
        raise IncidentError(f"No docs page at {path[:200]!r} (or not one you may see).", status=404,
                            field="postmortem")
    return entity, page


@transaction.atomic
def incident_set_postmortem(*, actor, incident_id: Any, url: Any) -> Incident:
    """Link the postmortem: a docs page of an entity (it must exist and the actor must see it); "" unlinks."""
    if url is not None and not isinstance(url, str):
        raise IncidentError("The postmortem must be a docs page URL (text).", field="postmortem")
    incident = _responder(actor, incident_id)
    before = incident.postmortem_entity.ref + "/" + incident.postmortem_path if incident.postmortem_entity else None
    if url and url.strip():
        entity, page = docs_page_for(actor, url[:1000])
        incident.postmortem_entity, incident.postmortem_path = entity, page.path
        incident.postmortem_title = page.title[:300]
        text = (f"Postmortem: {page.title} ({entity.ref}, {page.path or 'index'})"
                if entity.visibility == permissions.Visibility.INTERNAL else "Postmortem linked (a private entity's docs)")
    else:
        incident.postmortem_entity, incident.postmortem_path, incident.postmortem_title = None, "", ""
        text = "Postmortem link removed"
    incident.save(update_fields=["postmortem_entity", "postmortem_path", "postmortem_title", "updated_at"])
    _entry(incident, EntryKind.POSTMORTEM, text, actor=actor).save()
    audit_record(actor=actor, action="incidents.postmortem", target=f"incident:{incident.pk}", before=before,
                 after=(incident.postmortem_entity.ref + "/" + incident.postmortem_path) if incident.postmortem_entity
                 else None)
    return incident


# -- Alertmanager ---------------------------------------------------------------------------------


@dataclass
class Received:
    """What one notification did (the webhook's answer)."""

    incident: Incident | None = None
    created: bool = False
    resolved: bool = False
    alerts: dict[str, int] = field(default_factory=lambda: {"received": 0, "new": 0, "changed": 0, "unchanged": 0})
    unlinked: list[str] = field(default_factory=list)
    note: str = ""
    hidden: frozenset[str] = frozenset()  # of `unlinked`: entities the sender may not see (never named)


def _alert_text(alert: alertmanager.Alert, by_ref: dict[str, Entity]) -> str:
    """The timeline's words for an alert, which every reader of the incident sees: its entity named as
    `_shown` names it. An alert on a private entity, or on one the sender may not see (the timeline cannot
    tell which), keeps only its name: its summary and labels describe that entity."""
    name = alert.name or alert.fingerprint
    entity = by_ref.get(alert.entity_ref) if alert.entity_ref else None
    if alert.entity_ref and (entity is None or entity.visibility != permissions.Visibility.INTERNAL):
        return f"{name} (on {'a private entity' if entity is not None else 'an entity not linked'})"[:1000]
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    shown = {k: v for k, v in alert.labels.items() if k not in ("alertname", conf.get("ENTITY_LABEL"))}
    labels = ", ".join(f"{k}={v}" for k, v in sorted(shown.items())[:6])
    on = f" on {_shown(entity)}" if entity is not None else ""
    return f"{name}{on}{' — ' + summary if summary else ''}{' (' + labels + ')' if labels else ''}"[:1000]


def _last_with_key(dedup_key: str) -> Incident | None:
    return Incident.objects.filter(dedup_key=dedup_key).order_by("-created_at", "-id").select_for_update().first()


def _news(incident: Incident, alerts: list[alertmanager.Alert]) -> bool:
    """Whether a resolved incident's group brings an alert it does not know firing: a new one, or one
    that fires again after resolving."""
    firing = [a for a in alerts if a.status == AlertStatus.FIRING]
    if not firing:
        return False
    known = {fp: (status, starts) for fp, status, starts in IncidentAlert.objects.filter(
        incident=incident, fingerprint__in=[a.fingerprint for a in firing]).values_list(
        "fingerprint", "status", "starts_at")}
    return any(known.get(a.fingerprint) != (AlertStatus.FIRING, a.starts_at) for a in firing)


@transaction.atomic
def alertmanager_receive(*, actor, body: Any) -> Received:
    """One Alertmanager notification (version 4) → the incident of its group (groupKey) opened, updated or
    resolved. Checked whole before anything is written (alertmanager.PayloadError: 400 naming the field,
    413 over MAX_ALERTS). Rules (docs/operations.md, "Incidents"):
    * a group with a firing alert and no unresolved incident opens one; its alerts' `plinth_entity`
      labels link entities (unknown or hidden ones are listed in `unlinked` and in the timeline);
    * every alert is kept by fingerprint; a new or changed status is a timeline entry, a repeat is not;
    * a new firing alert of higher severity raises the incident's severity (never lowers it);
    * when every alert of an unresolved incident is resolved, the incident is resolved;
    * a repeat of alerts a resolved incident already knows opens nothing (its humans resolved it); a new
      alert, or one firing again after it resolved, opens a new incident."""
    if not permissions.may_open_incident(actor):
        raise PermissionDenied("Sending alerts needs a member, maintainer or admin role in a team (use a "
                               "service account's token)")
    note = alertmanager.parse(body)
    alerts = list({a.fingerprint: a for a in note.alerts}.values())  # a repeated fingerprint: the last one
    out = Received(alerts={"received": len(note.alerts), "new": 0, "changed": 0, "unchanged": 0})
    refs = list(dict.fromkeys(a.entity_ref for a in alerts if a.entity_ref))
    found = resolve_entities(actor, refs)
    out.unlinked, out.hidden = found.unknown, _hidden_refs(found.unknown)
    by_ref = {ref: e for ref in refs for e in found.entities if selectors.ref_key(ref) == e.ref}
    now = timezone.now()
    incident = _active_with_key(note.dedup_key, lock=True)
    if incident is None:
        last = _last_with_key(note.dedup_key)
        firing = [a for a in alerts if a.status == AlertStatus.FIRING]
        if last is not None and not _news(last, alerts):
            incident, out.note = last, "the group's incident is resolved and these alerts are known to it"
        elif not firing:
            out.note = "no incident is open for this group and none of its alerts fires: nothing to open"
            return out
        else:
            entities = [by_ref[a.entity_ref] for a in firing if a.entity_ref in by_ref]
            entities = list(dict.fromkeys(entities))
            severity = min(a.severity for a in firing)
            try:
                with transaction.atomic():
                    incident = _create(title=note.title, severity=severity, source=Source.ALERTMANAGER,
                                       dedup_key=note.dedup_key, summary=note.summary, entities=entities, team=None,
                                       actor=None, label=ALERTMANAGER_LABEL, at=now, unknown=found.unknown,
                                       group_key=note.group_key, external_url=note.external_url,
                                       hidden=out.hidden)
                out.created = True
            except IntegrityError:  # a second Alertmanager of an HA pair sent the same group at once
                incident = _active_with_key(note.dedup_key, lock=True)
                if incident is None:
                    raise
    out.incident = incident
    _apply_alerts(incident, note, alerts, by_ref, out, now)
    return out


def insert_rows(objs: list) -> None:
    """Insert unsaved rows of one model with one multi-row INSERT per chunk. `bulk_create` on SQLite
    splits at Django's 999-parameter batch (16 statements for 1,000 alerts); this keeps a notification
    at a constant number of statements up to MAX_ALERTS. Values are prepared by the fields themselves,
    as the ORM does (JSON, time zones)."""
    if not objs:
        return
    meta = type(objs[0])._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    chunk = max(1, 30000 // len(fields))  # under SQLite's 32,766 and PostgreSQL's 65,535 parameters
    with connection.cursor() as cursor:
        for i in range(0, len(objs), chunk):
            part = objs[i : i + chunk]
            params = [f.get_db_prep_save(getattr(o, f.attname), connection) for o in part for f in fields]
            # Only the model's own quoted names and placeholders are formatted in; values are parameters.
            sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(part))}"  # noqa: S608
            cursor.execute(sql, params)


def _apply_alerts(incident: Incident, note: alertmanager.Notification, alerts: list[alertmanager.Alert],
                  by_ref: dict[str, Entity], out: Received, now: datetime) -> None:
    """Store the alerts of one notification on `incident` with their timeline entries; raise the
    severity, link new entities, resolve the incident when no alert of it fires. A constant number of
    statements, whatever the number of alerts: a changed alert is replaced (one DELETE, one INSERT with
    the new ones), a repeated one only gets its `last_seen_at`."""
    label = ALERTMANAGER_LABEL
    known = {a.fingerprint: a for a in IncidentAlert.objects.filter(
        incident=incident, fingerprint__in=[a.fingerprint for a in alerts]).only(
        "id", "fingerprint", "status", "starts_at", "first_seen_at")}
    rows, replaced, repeated, entries = [], [], [], []
    unlinked_noted: set[str] = set()
    for a in alerts:
        row = known.get(a.fingerprint)
        if row is not None and row.status == a.status and (a.status != AlertStatus.FIRING or row.starts_at == a.starts_at):
            repeated.append(row.pk)
            out.alerts["unchanged"] += 1
            continue
        rows.append(IncidentAlert(
            incident=incident, fingerprint=a.fingerprint, name=a.name, status=a.status, severity=a.severity,
            labels=a.labels, annotations=a.annotations, entity_ref=a.entity_ref, starts_at=a.starts_at,
            ends_at=a.ends_at, generator_url=a.generator_url, last_seen_at=now,
            first_seen_at=row.first_seen_at if row is not None else now))
        if a.status == AlertStatus.FIRING:
            again = row is not None and row.status == AlertStatus.RESOLVED
            entries.append(_entry(incident, EntryKind.ALERT_FIRING, ("Alert firing again: " if again else
                                                                     "Alert firing: ") + _alert_text(a, by_ref),
                                  label=label, at=now))
        else:
            entries.append(_entry(incident, EntryKind.ALERT_RESOLVED, "Alert resolved: " + _alert_text(a, by_ref),
                                  label=label, at=now))
        if row is not None:
            replaced.append(row.pk)
            out.alerts["changed"] += 1
            continue
        out.alerts["new"] += 1
        if a.entity_ref and a.entity_ref not in by_ref and not out.created and a.entity_ref not in unlinked_noted:
            unlinked_noted.add(a.entity_ref)
            entries.append(_entry(incident, EntryKind.UNLINKED, _unlinked_text(a.entity_ref, out.hidden),
                                  label=label, at=now))
    if replaced:
        IncidentAlert.objects.filter(pk__in=replaced).delete()
    insert_rows(rows)
    if repeated:
        IncidentAlert.objects.filter(pk__in=repeated).update(last_seen_at=now)
    touched = bool(rows)
    if note.truncated and touched:
        entries.append(_entry(incident, EntryKind.NOTE, f"Alertmanager left out {note.truncated:,} alerts of this "
                              "notification (max_alerts)", label=label, at=now))
    if not out.created:
        _link_new_entities(incident, alerts, by_ref, out, entries, now)
    if incident.is_active:
        firing = [a for a in alerts if a.status == AlertStatus.FIRING]
        worst = min((a.severity for a in firing), default=None)
        if worst is not None and worst < incident.severity:
            entries.append(_entry(incident, EntryKind.SEVERITY, f"Severity raised from {incident.severity.upper()} "
                                  f"to {worst.upper()} by a firing alert", label=label, at=now))
            incident.severity = worst
            incident.save(update_fields=["severity", "updated_at"])
        still_firing = IncidentAlert.objects.filter(incident=incident, status=AlertStatus.FIRING).exists()
        if not still_firing:
            entries.append(_set_status(incident, Status.RESOLVED, actor=None, label=label,
                                       note="every alert of the group is resolved", at=now))
            out.resolved = True
    insert_rows(entries)
    if touched and not out.created:
        audit_record(actor=None, actor_label=label, action="incidents.alerts", target=f"incident:{incident.pk}",
                     after={"new": out.alerts["new"], "changed": out.alerts["changed"], "resolved": out.resolved})


def _link_new_entities(incident: Incident, alerts: list[alertmanager.Alert], by_ref: dict[str, Entity],
                       out: Received, entries: list[TimelineEntry], now: datetime) -> None:
    """Entities named by this notification's alerts that the incident does not link yet; the first link of
    an incident opened without one gives it its owner team and visibility."""
    wanted = list(dict.fromkeys(by_ref[a.entity_ref] for a in alerts if a.entity_ref in by_ref))
    if not wanted:
        return
    have = dict(IncidentEntity.objects.filter(incident=incident).values_list("entity_id", "position"))
    new = [e for e in wanted if e.pk not in have]
    if not new:
        return
    start = max(have.values(), default=-1) + 1
    IncidentEntity.objects.bulk_create([IncidentEntity(incident=incident, entity=e, position=start + i)
                                        for i, e in enumerate(new)])
    entries.extend(_entry(incident, EntryKind.LINKED, f"Linked {_shown(e)} (named by an alert)",
                          label=ALERTMANAGER_LABEL, at=now) for e in new)
    if not have and incident.owner_team_id is None:
        incident.owner_team_id, incident.visibility = new[0].owner_team_id, new[0].visibility
        incident.save(update_fields=["owner_team", "visibility", "updated_at"])
