"""Runs of software templates. Templates themselves are catalog entities (kind Template)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Run(models.Model):
    """One execution of a template. Parameters are stored without secrets (see secrets.py);
    the template is snapshotted so a later change of the template does not change a past run."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    template_ref = models.CharField(max_length=200)
    template_title = models.CharField(max_length=300, blank=True)
    template_source = models.CharField(max_length=2000)
    template = models.JSONField()  # the Template entity's data at the time of the run
    parameters = models.JSONField(default=dict)  # secrets removed
    secret_names = models.JSONField(default=list, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    output = models.JSONField(default=dict, blank=True)  # {"links": [...], "text": [...]}
    files = models.JSONField(default=list, blank=True)  # dry run: [{"path", "size", "content", "truncated"}]
    attempts = models.PositiveSmallIntegerField(default=0)
    # The Celery task that claimed the current attempt: a redelivery of the same message (its worker
    # process died) may take the run over at once, without waiting for the heartbeat to go stale.
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="scaffolder_runs"
    )
    # Permissions: a run is private to its creator, the team it was created for, and platform admins.
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    visibility = models.CharField(max_length=10, default=Visibility.PRIVATE)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Cancel (services.run_cancel): a queued run is cancelled at once; a running one is asked to stop, and
    # its executor ends it "cancelled" before its next step. Who asked is kept by name for the log and page.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.template_ref} run {self.uid}"

    def get_absolute_url(self) -> str:
        return reverse("scaffolder:run", args=[self.uid])

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def cancelling(self) -> bool:
        """Asked to stop while running: the step under way finishes, the next does not start."""
        return self.cancel_requested_at is not None and not self.finished

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RunStep(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    step_id = models.CharField(max_length=100)
    name = models.CharField(max_length=300)
    action = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING)
    message = models.TextField(blank=True)
    output = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_step_per_index")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.index} {self.action}"


class RunLog(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logs")
    step_id = models.CharField(max_length=100, blank=True)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:60]}"


class RunSecret(models.Model):
    """The secrets entered in a run's form, Fernet-encrypted (portal/scaffolder/secrets.py), from the
    view that created the run until the run ends. In the database rather than on a disk so that the
    web node that took the form and the worker that runs it share nothing else."""

    run_uid = models.UUIDField(primary_key=True)
    token = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"secrets of run {self.run_uid}"


class PublishedRepository(models.Model):
    """A git repository `publish:git` made. The row reserves the name (one per owner, on every node:
    two runs cannot both get it) and says which commit was published; the repository itself is a git
    bundle in the shared storage (scaffolder/downloads.py), downloaded from the run page and cloned
    with `git clone`. A worker's checkout is its own cache, made again from the bundle on any node that
    needs one (actions.published_checkout)."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # names its bundle
    owner = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    run_uid = models.UUIDField(db_index=True)
    branch = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)  # publish:git's `description` input
    commit = models.CharField(max_length=40, blank=True)  # empty while being published
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="scaffolder_repository_unique_name")]
        ordering = ["owner", "name"]

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"

    def get_absolute_url(self) -> str:
        return reverse("scaffolder:repository", args=[self.owner, self.name])
