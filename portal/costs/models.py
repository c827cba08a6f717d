"""Cost data: the imports (one row per file), the FOCUS lines they brought, the monthly allocation of
those lines to entities and teams (recomputed, never edited), team budgets and the alerts sent on them.

Money is a Decimal in the export's own currency: nothing here sums two currencies together."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility

MONEY = {"max_digits": 28, "decimal_places": 10}


class Provider(models.Model):
    """A source of cost exports (`aws`, `gcp`, `snowflake`…). Its row is the import lock: imports of one
    provider run one at a time (select_for_update on PostgreSQL; SQLite serialises writers anyway)."""

    name = models.CharField(max_length=63, unique=True)

    def __str__(self) -> str:
        return self.name


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class CostImport(models.Model):
    """One file's import. `totals`: {currency: {"billed": "…", "effective": "…"}} of the file's lines;
    `periods`: the billing periods (YYYY-MM-DD) it replaced for its provider."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="imports")
    file_name = models.CharField(max_length=255)
    path = models.CharField(max_length=1000, blank=True)  # the stored file while queued/running
    format = models.CharField(max_length=10)  # csv | parquet
    source = models.CharField(max_length=10)  # upload | api | command | scheduled
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    error = models.TextField(blank=True)
    rows = models.BigIntegerField(default=0)
    periods = models.JSONField(default=list)
    totals = models.JSONField(default=dict)
    size = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.provider} {self.file_name} ({self.status})"


class CostLine(models.Model):
    """One FOCUS row, normalised: times in UTC, `month` the first day of ChargePeriodStart's UTC month,
    `tags` canonical JSON text (sorted keys) or "". Written by raw batch inserts (services.run_import).

    Its two keys have no database constraint: PostgreSQL checks a deferred foreign key row by row at
    commit, which doubled the time of a 10M-line import. The only writer is run_import, which inserts
    its own import's id and its provider's id while holding that provider's row lock; deleting an
    import or a provider still deletes its lines (Django's cascade)."""

    cost_import = models.ForeignKey(CostImport, on_delete=models.CASCADE, related_name="+", db_index=False,
                                    db_constraint=False)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+", db_index=False,
                                 db_constraint=False)
    billing_period = models.DateField()
    month = models.DateField()
    charge_start = models.DateTimeField()
    charge_end = models.DateTimeField()
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    list_cost = models.DecimalField(**MONEY, null=True)
    currency = models.CharField(max_length=3)
    charge_category = models.CharField(max_length=20)
    charge_class = models.CharField(max_length=20, blank=True)
    service_name = models.TextField()
    service_category = models.TextField(blank=True)
    resource_id = models.TextField(blank=True)
    region_id = models.TextField(blank=True)
    tags = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["provider", "billing_period"], name="costline_period"),
            models.Index(fields=["month"], name="costline_month"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.charge_start} {self.service_name} {self.effective_cost} {self.currency}"


class Bucket(models.TextChoices):
    ENTITY = "entity"  # a catalog entity (by tag or by the ResourceId mapping of its descriptor)
    TEAM = "team"  # a team, by tag, with no entity
    SHARED = "shared"  # the team's share of shared costs
    UNALLOCATED = "unallocated"


class Allocation(models.Model):
    """Cost of one month in one currency that went to one entity/team (or nowhere). Team, visibility,
    kind and domain are copied from the entity so pages filter and group without a join."""

    month = models.DateField()
    currency = models.CharField(max_length=3)
    bucket = models.CharField(max_length=12, choices=Bucket.choices)
    entity = models.ForeignKey("catalog.Entity", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                   db_index=False)
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    kind = models.CharField(max_length=40, blank=True)
    domain = models.CharField(max_length=200, blank=True)
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    lines = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["month", "owner_team"], name="allocation_month_team"),
            models.Index(fields=["entity", "month"], name="allocation_entity_month"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.bucket} {self.entity_id or self.owner_team_id}: {self.effective_cost}"


class Budget(models.Model):
    """A team's monthly budget in one currency (compared with that currency's costs only)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "currency"], name="one_budget_per_currency")]

    def __str__(self) -> str:
        return f"{self.team}: {self.amount} {self.currency}/month"


class BudgetAlert(models.Model):
    """A threshold crossed by a team in a month: written once, so each alert is sent once per month."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    month = models.DateField()
    threshold = models.PositiveSmallIntegerField()
    spent = models.DecimalField(**MONEY)
    budget = models.DecimalField(max_digits=20, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "currency", "month", "threshold"],
                                               name="one_alert_per_threshold_month")]

    def __str__(self) -> str:
        return f"{self.team} {self.month:%Y-%m} {self.threshold}%"
