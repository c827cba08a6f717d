"""Incidents: something is broken for the users of one or more catalog entities. Opened by hand, by a
service call (an SLO's page-level burn), or by Alertmanager's webhook; moved open → acknowledged →
resolved (and reopened); every change is a timeline entry; MTTA and MTTR follow from the timestamps.

`owner_team` and `visibility` come from the first linked entity (or the team chosen when none is
linked), so the permission module answers for an incident as for that entity. Models keep invariants
only; every write goes through `services.py`."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility


class Severity(models.TextChoices):
    """SEV1 is the worst; the values sort in that order (the badge shows the worst open one)."""

    SEV1 = "sev1", "SEV1 — critical"
    SEV2 = "sev2", "SEV2 — major"
    SEV3 = "sev3", "SEV3 — minor"
    SEV4 = "sev4", "SEV4 — low"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED)  # "open" in the wide sense: not resolved


class Source(models.TextChoices):
    MANUAL = "manual", "Opened by hand"
    SLO = "slo", "SLO burn rate"
    ALERTMANAGER = "alertmanager", "Alertmanager"


class Incident(models.Model):
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=4, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)
    # At most one unresolved incident per key (a partial unique index): Alertmanager's group, an SLO.
    dedup_key = models.CharField(max_length=200, blank=True)
    group_key = models.TextField(blank=True)  # Alertmanager's groupKey, as sent
    external_url = models.CharField(max_length=500, blank=True)  # Alertmanager's externalURL
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)  # the first acknowledgement
    resolved_at = models.DateTimeField(null=True, blank=True)  # the latest resolution (cleared on reopen)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    opened_by_label = models.CharField(max_length=150)
    postmortem_entity = models.ForeignKey("catalog.Entity", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    postmortem_path = models.CharField(max_length=500, blank=True)
    postmortem_title = models.CharField(max_length=300, blank=True)
    version = models.PositiveIntegerField(default=0)  # compare-and-set for status changes
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dedup_key"], condition=~Q(dedup_key="") & ~Q(status="resolved"),
                                    name="one_unresolved_incident_per_key"),
        ]
        indexes = [
            models.Index(fields=["status", "severity", "opened_at"], name="incident_status_sev"),
            models.Index(fields=["owner_team", "status"], name="incident_team_status"),
            models.Index(fields=["created_at", "id"], name="incident_created"),
            models.Index(fields=["dedup_key", "created_at"], name="incident_dedup_key"),
            models.Index(fields=["resolved_at"], name="incident_resolved_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.severity}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("incidents:detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def severity_label(self) -> str:
        return self.severity.upper()

    @property
    def mtta_seconds(self) -> float | None:
        """Time to acknowledge: opened → first acknowledgement (None when nobody acknowledged it)."""
        return (self.acknowledged_at - self.opened_at).total_seconds() if self.acknowledged_at else None

    @property
    def mttr_seconds(self) -> float | None:
        """Time to resolve: opened → the latest resolution (None while unresolved)."""
        if self.status != Status.RESOLVED or self.resolved_at is None:
            return None
        return (self.resolved_at - self.opened_at).total_seconds()


class IncidentEntity(models.Model):
    """A catalog entity the incident is about; `position` 0 is the first (it gave the owner team)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="links")
    entity = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["incident", "entity"], name="one_link_per_entity")]
        indexes = [models.Index(fields=["entity", "incident"], name="incident_link_entity")]

    def __str__(self) -> str:
        return f"#{self.incident_id} → {self.entity_id}"


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class IncidentAlert(models.Model):
    """One Alertmanager alert (by fingerprint) of the incident's group, as the latest notification said."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alerts")
    fingerprint = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)  # the alertname label
    status = models.CharField(max_length=8, choices=AlertStatus.choices)
    severity = models.CharField(max_length=4, choices=Severity.choices)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    entity_ref = models.CharField(max_length=200, blank=True)  # the mapping label's value, as sent
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    generator_url = models.CharField(max_length=1000, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [models.UniqueConstraint(fields=["incident", "fingerprint"], name="one_alert_per_fingerprint")]

    def __str__(self) -> str:
        return f"#{self.incident_id} {self.name or self.fingerprint} ({self.status})"


class EntryKind(models.TextChoices):
    OPENED = "opened", "Opened"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    REOPENED = "reopened", "Reopened"
    NOTE = "note", "Note"
    ALERT_FIRING = "alert-firing", "Alert firing"
    ALERT_RESOLVED = "alert-resolved", "Alert resolved"
    SEVERITY = "severity", "Severity changed"
    LINKED = "linked", "Entity linked"
    UNLINKED = "unlinked", "Not linked"
    POSTMORTEM = "postmortem", "Postmortem"


class TimelineEntry(models.Model):
    """Append-only: what happened, who did it, when."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"], name="incident_timeline")]

    def __str__(self) -> str:
        return f"#{self.incident_id} {self.at:%Y-%m-%d %H:%M} {self.kind}"
