"""Reads of the incidents app, always filtered by `permissions.visible_q` (an incident carries its owner
team and visibility); MTTA/MTTR figures; the scorecard fact; the people told of a new incident."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from statistics import mean
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Min, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.descriptors.refs import parse_ref
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Membership
from portal.core.db import values_in

from . import conf
from .models import ACTIVE, Incident, IncidentAlert, IncidentEntity, Severity, Status, TimelineEntry


def visible_incidents(user) -> QuerySet[Incident]:
    return permissions.filter_visible(Incident.objects.all(), user)


def listed(qs: QuerySet[Incident], user) -> QuerySet[Incident]:
    """With what a row shows, decided once per request (never per row): the team, the linked entities
    the reader may see (`incident.links.all()`, one prefetch query) and whether the reader may see the
    postmortem's entity (`postmortem_visible`)."""
    links = (permissions.filter_visible(IncidentEntity.objects.select_related("entity"), user, prefix="entity__")
             .only("incident_id", "position", "entity__ref", "entity__kind_key", "entity__namespace", "entity__name",
                   "entity__title", "entity__owner_team_id", "entity__visibility"))
    seen = permissions.filter_visible(Entity.objects.filter(pk=OuterRef("postmortem_entity_id")), user)
    return (qs.select_related("owner_team", "postmortem_entity").annotate(postmortem_visible=Exists(seen))
            .prefetch_related(Prefetch("links", queryset=links)))


def incident_list(user, *, status: str = "", severity: str = "", team: str = "", entity: str = "",
                  source: str = "") -> QuerySet[Incident]:
    """Visible incidents, filtered. `status`: one of Status, or "active" (open or acknowledged)."""
    qs = visible_incidents(user)
    if status == "active":
        qs = qs.filter(status__in=ACTIVE)
    elif status:
        qs = qs.filter(status=status)
    if severity:
        qs = qs.filter(severity=severity)
    if team:
        qs = qs.filter(owner_team__name=team)
    if source:
        qs = qs.filter(source=source)
    if entity:
        links = permissions.filter_visible(IncidentEntity.objects.filter(entity__ref=entity), user, prefix="entity__")
        qs = qs.filter(pk__in=links.values("incident_id"))
    return qs


def incident_detail(user, pk: int) -> Incident | None:
    """The incident with its timeline and alerts; each alert's `entity_hidden` says whether its entity label
    names no entity the reader may see (decided in one query for all of them)."""
    timeline = TimelineEntry.objects.select_related("actor").order_by("at", "id")
    incident = (listed(visible_incidents(user), user).select_related("opened_by")
                .prefetch_related(Prefetch("timeline", queryset=timeline),
                                  Prefetch("alerts", queryset=IncidentAlert.objects.order_by("status", "starts_at", "id")))
                .filter(pk=pk).first())
    if incident is not None:
        _mark_hidden_alerts(user, list(incident.alerts.all()))
    return incident


def ref_key(ref: str) -> str | None:
    """`kind:namespace/name` (namespace defaults to `default`), lower case; None when malformed."""
    try:
        return parse_ref(ref.strip()).key()
    except (ValueError, AttributeError):
        return None


def _mark_hidden_alerts(user, alerts: list[IncidentAlert]) -> None:
    """An alert's labels name its entity (and often say more about it): when the label names another team's
    private entity — or none at all, so that the two look alike — the reader gets no labels."""
    keys = {a.pk: ref_key(a.entity_ref) for a in alerts if a.entity_ref}
    wanted = {k for k in keys.values() if k}
    seen = set(catalog_selectors.visible_entities(user).filter(ref__in=wanted).values_list("ref", flat=True)
               ) if wanted else set()
    for a in alerts:
        a.entity_hidden = bool(a.entity_ref) and keys.get(a.pk) not in seen


def visible_links(incident: Incident) -> list:
    """The linked entities of an incident read through `listed`: those the reader may see (a link to
    another team's private entity is left out)."""
    return [link.entity for link in incident.links.all()]


def open_badge(user, entity) -> dict:
    """The entity's unresolved incidents the user may see: how many and the worst severity (one query)."""
    row = (IncidentEntity.objects.filter(entity=entity, incident__status__in=ACTIVE)
           .filter(permissions.visible_q(user, prefix="incident__"))
           .aggregate(n=Count("incident", distinct=True), worst=Min("incident__severity")))
    return {"count": row["n"] or 0, "worst": row["worst"]}


@dataclass(frozen=True)
class Figures:
    """MTTA and MTTR (mean seconds) over incidents opened in a window, with their counts."""

    mtta: float | None
    mttr: float | None
    acknowledged: int
    resolved: int
    opened: int

    @property
    def mtta_hours(self) -> float | None:
        return None if self.mtta is None else round(self.mtta / 3600, 2)

    @property
    def mttr_hours(self) -> float | None:
        return None if self.mttr is None else round(self.mttr / 3600, 2)


def figures(rows: list[tuple]) -> Figures:
    """From (status, opened_at, acknowledged_at, resolved_at) rows: MTTA over those acknowledged, MTTR
    over those resolved (opened → the final resolution)."""
    acks = [(ack - opened).total_seconds() for _, opened, ack, _ in rows if ack is not None]
    fixes = [(res - opened).total_seconds() for status, opened, _, res in rows
             if status == Status.RESOLVED and res is not None]
    return Figures(mtta=mean(acks) if acks else None, mttr=mean(fixes) if fixes else None,
                   acknowledged=len(acks), resolved=len(fixes), opened=len(rows))


def for_entity(user, entity) -> dict:
    """The entity's Incidents tab: unresolved incidents (worst first), the resolved history (newest
    first, bounded) and the MTTA/MTTR of those opened in the last METRICS_DAYS days. Three queries."""
    days = int(conf.get("METRICS_DAYS"))
    qs = visible_incidents(user).filter(pk__in=IncidentEntity.objects.filter(entity=entity).values("incident_id"))
    active = list(qs.filter(status__in=ACTIVE).select_related("owner_team").order_by("severity", "opened_at", "id"))
    history = list(qs.filter(status=Status.RESOLVED).select_related("owner_team")
                   .order_by("-resolved_at", "-id")[: conf.get("HISTORY")])
    since = timezone.now() - timedelta(days=days)
    rows = list(qs.filter(opened_at__gte=since).values_list("status", "opened_at", "acknowledged_at", "resolved_at"))
    return {"active": active, "history": history, "figures": figures(rows), "days": days}


def scorecard_facts(entity_ids: list[int]) -> dict[int, dict]:
    """The `incidents` fact of each entity (docs/operations.md, "Facts"), one query whatever the batch:
    {"open": unresolved, "open_sev1": unresolved SEV1, "last_90d": opened in the window,
    "mtta_hours_90d": …, "mttr_hours_90d": …} (hours; null without an acknowledged / resolved incident in
    the window). Every entity asked about gets an answer: no incident is a fact too (zeros)."""
    days = int(conf.get("METRICS_DAYS"))
    since = timezone.now() - timedelta(days=days)
    per: dict[int, list[tuple]] = defaultdict(list)
    for entity_id, status, severity, opened, acked, resolved in (
        IncidentEntity.objects.filter(entity_id__in=values_in(entity_ids))
        .filter(Q(incident__status__in=ACTIVE) | Q(incident__opened_at__gte=since))
        .values_list("entity_id", "incident__status", "incident__severity", "incident__opened_at",
                     "incident__acknowledged_at", "incident__resolved_at")
    ):
        per[entity_id].append((status, severity, opened, acked, resolved))
    out = {}
    for entity_id in entity_ids:
        rows = per.get(entity_id, [])
        recent = [(s, o, a, r) for s, _, o, a, r in rows if o >= since]
        numbers = figures(recent)
        out[entity_id] = {
            "open": sum(1 for s, *_ in rows if s in ACTIVE),
            "open_sev1": sum(1 for s, sev, *_ in rows if s in ACTIVE and sev == Severity.SEV1),
            "last_90d": len(recent),
            "mtta_hours_90d": numbers.mtta_hours,
            "mttr_hours_90d": numbers.mttr_hours,
        }
    return out


def period_rows(start, end, *, severity: str = "", field: str = "resolved_at") -> list[tuple]:
    """(status, opened, acknowledged, resolved) of incidents whose `field` falls in [start, end) — for
    the Insights KPIs (the whole organisation: no visibility, as every Insights figure)."""
    qs = Incident.objects.filter(**{f"{field}__gte": start, f"{field}__lt": end})
    if severity:
        qs = qs.filter(severity=severity)
    return list(qs.values_list("status", "opened_at", "acknowledged_at", "resolved_at"))


def responders(incident: Incident, exclude: Any = None) -> list:
    """Who hears of an incident: members, maintainers and admins of the owning team; no team: platform
    admins."""
    User = get_user_model()
    if incident.owner_team_id is not None:
        members = Membership.objects.filter(team_id=incident.owner_team_id,
                                            role__in=permissions.INCIDENT_RESPONDER_ROLES).values("user_id")
        qs = User.objects.filter(pk__in=members)
    else:
        qs = User.objects.filter(is_superuser=True)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return list(qs.filter(is_active=True).order_by("pk"))
