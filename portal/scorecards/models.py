"""Scorecard results: one current row per entity × scorecard, the history of its level changes, a
daily per-team rollup (the trends), and the manual check results owners record."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility


class Result(models.Model):
    """The latest evaluation of one entity against one scorecard. `checks`: {check id: [passed, reason]}
    (reason: why a check could not be evaluated, "" otherwise). Team and visibility are copied from
    the entity so lists filter and roll up without a join."""

    entity = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    scorecard = models.CharField(max_length=63)
    level = models.CharField(max_length=40, blank=True)  # "" = no level reached
    rank = models.PositiveSmallIntegerField(default=0)  # 0 = none, 1 = the first level…
    passed = models.PositiveSmallIntegerField(default=0)
    total = models.PositiveSmallIntegerField(default=0)
    checks = models.JSONField(default=dict)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    definition_version = models.PositiveIntegerField(default=1)
    # Of everything above: an unchanged result is recognised without decoding `checks`.
    digest = models.CharField(max_length=32, blank=True)
    evaluated_at = models.DateTimeField()
    level_since = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity", "scorecard"], name="one_result_per_scorecard")]
        indexes = [
            models.Index(fields=["scorecard", "owner_team", "rank"], name="scorecard_team_rank"),
            models.Index(fields=["scorecard", "id"], name="scorecard_result_page"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.scorecard}: {self.level or 'no level'}"


class LevelChange(models.Model):
    """A change of an entity's level on a scorecard (compact: only changes are written)."""

    entity = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    scorecard = models.CharField(max_length=63)
    from_level = models.CharField(max_length=40, blank=True)
    to_level = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["entity", "scorecard", "at"], name="levelchange_entity")]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.scorecard}: {self.from_level or '-'} → {self.to_level or '-'}"


class DailyRollup(models.Model):
    """Entities per level per team and domain on one day: today's rows are the current counts every scorecard
    page reads (refreshed after each evaluation), earlier days' rows the trends."""

    day = models.DateField()
    scorecard = models.CharField(max_length=63)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    domain_ref = models.CharField(max_length=255, blank=True, default="")  # "" when in no domain
    level = models.CharField(max_length=40, blank=True)
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)  # private counts stay the team's
    count = models.PositiveIntegerField(default=0)
    # Of those entities, how many fail each campaign check (a check with a deadline): check id → count.
    failing = models.JSONField(default=dict, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)  # when the day's rows were last counted

    class Meta:
        indexes = [models.Index(fields=["scorecard", "day"], name="rollup_scorecard_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.scorecard} {self.owner_team_id} {self.level}: {self.count}"


class ManualResult(models.Model):
    """An owner's answer to a manual check, with its justification; it fails once expired."""

    entity = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    scorecard = models.CharField(max_length=63)
    check_id = models.CharField(max_length=63)
    passed = models.BooleanField()
    justification = models.TextField()
    expires_at = models.DateTimeField()
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    set_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity", "scorecard", "check_id"],
                                               name="one_manual_result_per_check")]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.scorecard}/{self.check_id}: {self.passed}"
