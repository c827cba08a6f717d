"""Usage analytics: raw events captured on the server, and the rollups every dashboard reads.

The raw `Event` table is written in batches off the request path (see capture.py) and read only by the
rollup task; dashboards, the insights API and the capability canvas read `Rollup`, `ActiveUserDay` and
`TeamMilestone`, which stay small (buckets, not events).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.core.usage import Client, EventType

__all__ = ["ActiveUserDay", "Client", "Event", "EventType", "Rollup", "TeamMilestone"]


class Event(models.Model):
    """One thing that happened. `team` is the team the event is about (the entity's owner, the run's or
    request's team), else the user's first team; `subject` names the object (entity ref, docs path,
    template ref, normalised search text, request id); `value` carries the one number an event has
    (result count, clicked rank, duration in seconds)."""

    occurred_at = models.DateTimeField(db_index=True)
    type = models.CharField(max_length=32, choices=EventType.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.CharField(max_length=300, blank=True)
    client = models.CharField(max_length=10, choices=Client.choices, default=Client.BROWSER)
    value = models.FloatField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)  # small extras: outcome, workflow, stage, gate

    class Meta:
        indexes = [models.Index(fields=["type", "occurred_at"], name="insights_event_type_time")]

    def __str__(self) -> str:
        return f"{self.type} {self.subject} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class Grain(models.TextChoices):
    HOURLY = "hourly", "Hourly"  # only the organisation's distinct users (type/subject "*"): rollup.GRAIN_ROWS
    DAILY = "daily", "Daily"  # per type × team × subject
    ORG_DAILY = "org_day", "Daily, all teams"  # per type × subject over every team (team NULL)
    # The sums of a Monday-to-Sunday week's org_day rows (no value samples): long org-wide top lists
    # read these for the range's whole weeks and daily rows only at its ragged edges.
    ORG_WEEKLY = "org_week", "Weekly, all teams"


class Rollup(models.Model):
    """Counts per time bucket and key: how many events of `type` about `subject` for `team`.

    `users` is the number of distinct users in the bucket for that key; `value_sum`/`value_count` give
    means (durations, result counts); `values` keeps a small sorted sample for medians and p95s."""

    grain = models.CharField(max_length=8, choices=Grain.choices)
    bucket = models.DateTimeField()  # start of the hour or day, UTC
    type = models.CharField(max_length=32, choices=EventType.choices)
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=300, blank=True)
    count = models.BigIntegerField(default=0)
    users = models.IntegerField(default=0)
    value_sum = models.FloatField(default=0)
    value_count = models.BigIntegerField(default=0)
    values = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "bucket", "type", "team", "subject"],
                name="insights_rollup_key",
                nulls_distinct=False,
            )
        ]
        indexes = [
            # Covering the org-wide top lists (grain, type, bucket range → subject sums): SQLite reads
            # the index alone, never the table (it has no INCLUDE, hence key columns).
            models.Index(fields=["grain", "type", "bucket", "subject", "count", "users", "value_sum", "value_count"],
                         name="insights_rollup_type_time"),
            models.Index(fields=["grain", "team", "type", "bucket"], name="insights_rollup_team_time"),
            # The last day a top list's few subjects were used (a probe per subject).
            models.Index(fields=["grain", "type", "subject", "bucket"], name="insights_rollup_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:00} {self.type} {self.subject}: {self.count}"


class ActiveUserDay(models.Model):
    """A user was active on a day (any event): hourly/daily/weekly/monthly active users count distinct
    users over these rows, overall or per team (through the user's memberships)."""

    day = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    events = models.IntegerField(default=0)
    # The day's hours (UTC) the user was active in: bit h set for hour h. A team's hourly series counts
    # distinct people per hour from these, the way the daily one counts (a person once, by their
    # memberships), which per-team hourly rollup rows cannot: they count the users of the events
    # recorded for a team, and two teams' counts cannot be added up.
    hours = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "user"], name="insights_active_user_day")]
        indexes = [models.Index(fields=["user", "day"], name="insights_active_user")]

    def __str__(self) -> str:
        return f"user {self.user_id} active on {self.day}"


class Milestone(models.TextChoices):
    """The onboarding funnel's steps, in order."""

    FIRST_SIGN_IN = "first_sign_in", "First sign-in"
    FIRST_SEARCH = "first_search", "First search"
    FIRST_REGISTRATION = "first_registration", "First registered entity"
    FIRST_TEMPLATE_RUN = "first_template_run", "First template run"
    FIRST_APPROVAL_EXECUTED = "first_approval_executed", "First approval executed"
    FIRST_MODEL = "first_model", "First registered model"


class TeamMilestone(models.Model):
    """When a team first reached a funnel step (written once, by the rollup)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    milestone = models.CharField(max_length=32, choices=Milestone.choices)
    reached_at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "milestone"], name="insights_team_milestone")]

    def __str__(self) -> str:
        return f"team {self.team_id}: {self.milestone} at {self.reached_at:%Y-%m-%d}"


class AnalyticsOptOut(models.Model):
    """A user who asked not to be counted individually: their events are stored without the user
    (team totals still count them), and no ActiveUserDay or milestone names them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"user {self.user_id} opted out of analytics"


class CaptureCounter(models.Model):
    """Counters of the capture pipeline that must outlive a process: "dropped" (events the buffer
    could not take: Redis down, database unreachable for too long)."""

    name = models.CharField(max_length=40, unique=True)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class FirstActiveDay(models.Model):
    """The first day a user was active (kept by the rollup with ActiveUserDay): "new" vs "returning"
    users per period without scanning every user's history."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(db_index=True)

    def __str__(self) -> str:
        return f"user {self.user_id} first active on {self.day}"


class DemoHistory(models.Model):
    """The demo organisation's generated usage history (portal/insights/demo.py): which days it covers
    and what it wrote, so that re-running the demo loader does not double it and
    `manage.py demo purge-insights` removes exactly it. Its events carry data={"demo": true}; its
    rollups, active days, first active days and milestones lie inside [start, end], where no real
    usage exists."""

    seed = models.IntegerField()
    start = models.DateField()
    end = models.DateField()  # inclusive
    generated_at = models.DateTimeField(auto_now_add=True)
    milestone_ids = models.JSONField(default=list, blank=True)  # TeamMilestone rows it created
    first_active_ids = models.JSONField(default=list, blank=True)  # FirstActiveDay rows it created
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "demo histories"

    def __str__(self) -> str:
        return f"demo usage history {self.start} – {self.end}"
