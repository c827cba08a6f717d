"""Where model versions serve: the current state per (model version, environment), its history, and
compliance drift. Each Deployment also has a catalog entity of kind Deployment (search, visibility,
relations); the rows here are what the timeline and the lineage graph join:
ModelVersion -> Deployment (model_version) -> Entity (entity) -> Relation servedBy -> Component/API.

Models keep invariants only; every write goes through `services.py`."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility


class Status(models.TextChoices):
    DEPLOYING = "deploying", "Deploying"
    LIVE = "live", "Live"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired"


class Source(models.TextChoices):
    API = "api", "CD pipeline"
    MLFLOW_ALIAS = "mlflow-alias", "MLflow alias"


class Deployment(models.Model):
    """One model version in one environment, as its latest event (by reported time) left it.
    `owner_team` and `visibility` are the model's, so the permission module answers as for the model."""

    entity = models.OneToOneField("catalog.Entity", on_delete=models.CASCADE, related_name="deployment")
    model = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="deployments")
    model_version = models.ForeignKey("catalog.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="deployments")
    version = models.CharField(max_length=20)
    environment = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices)
    endpoint = models.CharField(max_length=2000, blank=True)
    platform = models.CharField(max_length=40, blank=True)
    served_by_ref = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    status_since = models.DateTimeField()
    last_event_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version", "environment"],
                                               name="one_deployment_per_version_env")]
        indexes = [models.Index(fields=["model", "environment"], name="deployment_model_env"),
                   models.Index(fields=["model_version"], name="deployment_model_version")]

    def __str__(self) -> str:
        return f"{self.model_id} v{self.version} in {self.environment} ({self.status})"


class DeploymentEvent(models.Model):
    """Append-only history: who reported what, when, for which version and environment."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    model = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.CharField(max_length=20)
    environment = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices)
    endpoint = models.CharField(max_length=2000, blank=True)
    platform = models.CharField(max_length=40, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    occurred_at = models.DateTimeField()  # as reported (the CD pipeline's clock), checked for sanity
    received_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150)
    idempotency_key = models.CharField(max_length=100, blank=True)
    fingerprint = models.CharField(max_length=64)  # of the reported fields: a replayed key must match it

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["model", "occurred_at"], name="deployevent_model_time")]
        constraints = [models.UniqueConstraint(fields=["actor_label", "idempotency_key"],
                                               condition=~models.Q(idempotency_key=""),
                                               name="one_event_per_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.version}@{self.environment} {self.status} at {self.occurred_at}"


class Drift(models.Model):
    """A version serving in a governed environment without an executed approval. Opened and cleared
    by `services.drift_refresh` (each with one audit event); at most one open row per deployment."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="drifts")
    model = models.ForeignKey("catalog.Entity", on_delete=models.CASCADE, related_name="+")
    version = models.CharField(max_length=20)
    environment = models.CharField(max_length=40)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    reason = models.CharField(max_length=300)  # why it drifts (no approval, or the policy failed closed)
    detected_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["deployment"], condition=models.Q(cleared_at__isnull=True),
                                               name="one_open_drift_per_deployment")]
        indexes = [models.Index(fields=["cleared_at", "detected_at"], name="drift_open")]

    def __str__(self) -> str:
        return f"drift: {self.model_id} v{self.version} in {self.environment}"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None
