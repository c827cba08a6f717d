"""SLOs declared in OpenSLO files next to descriptors: one row per SLO objective with its latest
evaluation, the evaluation history (the chart), and the state of each entity's file (its errors)."""

from __future__ import annotations

from django.db import models

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility


class SLOFile(models.Model):
    """The OpenSLO file an entity's annotation names, as last read: `errors` lists every problem (file,
    field, line); while there is one, the SLOs stay as the last valid file declared them."""

    entity = models.OneToOneField("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=2000)  # as the annotation gives it, relative to the descriptor
    errors = models.JSONField(default=list)
    digest = models.CharField(max_length=64, blank=True)  # of the last valid content
    read_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.entity_id} {self.path}"


class SLO(models.Model):
    """One objective of one OpenSLO SLO of an entity, with its latest evaluation. Team and visibility
    are copied from the entity (as scorecard results do) so lists filter without a join."""

    class Problem(models.TextChoices):
        NONE = "", "none"
        QUERY = "query", "Prometheus refused the query"
        UNREACHABLE = "unreachable", "Prometheus could not be reached"
        NO_DATA = "no_data", "no data"
        ERROR = "error", "Plinth could not evaluate it"

    entity = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=63)
    objective = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    spec = models.JSONField()
    target = models.FloatField()
    budgeting = models.CharField(max_length=20)
    window = models.CharField(max_length=20)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    # The latest successful evaluation (kept, marked stale, when a later one fails).
    sli = models.FloatField(null=True, blank=True)
    good = models.FloatField(null=True, blank=True)
    total = models.FloatField(null=True, blank=True)
    budget_remaining = models.FloatField(null=True, blank=True)
    budget_amount = models.FloatField(null=True, blank=True)
    budget_unit = models.CharField(max_length=10, blank=True)
    burn = models.JSONField(default=dict)
    alerts = models.JSONField(default=list)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # The latest attempt, and what went wrong with it.
    checked_at = models.DateTimeField(null=True, blank=True)
    problem = models.CharField(max_length=12, choices=Problem.choices, blank=True, default="")
    error = models.TextField(blank=True)
    paging = models.JSONField(default=list)  # long windows of the page conditions holding now
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity", "name", "objective"], name="one_slo_objective")]
        indexes = [models.Index(fields=["owner_team", "id"], name="slo_team")]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.name}/{self.objective}"

    @property
    def stale(self) -> bool:
        """The numbers shown are older than the latest attempt (Prometheus down, refusing, or no data now)."""
        return bool(self.problem) and self.evaluated_at is not None

    @property
    def meeting(self) -> bool | None:
        return None if self.sli is None else self.sli >= self.target


class Evaluation(models.Model):
    """One successful evaluation of an SLO: the chart's history."""

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="evaluations")
    at = models.DateTimeField()
    sli = models.FloatField(null=True, blank=True)
    budget_remaining = models.FloatField(null=True, blank=True)
    burn = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["slo", "at"], name="slo_evaluation_at")]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.at:%Y-%m-%d %H:%M}: {self.sli}"
