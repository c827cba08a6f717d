"""Catalog storage. Entities keep their full descriptor in `data`; the columns beside it are
the denormalised fields that lists, filters and facets need to be fast at 250k entities."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility
from portal.core.fields import RowIdAutoField


class LocationType(models.TextChoices):
    FILE = "file", "File"
    DIRECTORY = "dir", "Directory"
    URL = "url", "URL"
    FEAST = "feast", "Feast feature repository"
    UPLOAD = "upload", "Uploaded folder"
    GITHUB_DISCOVERY = "github-discovery", "GitHub organisation (discovery)"
    GITLAB_DISCOVERY = "gitlab-discovery", "GitLab group (discovery)"


class Location(models.Model):
    """A registered source of descriptors: a file, a directory of catalog-info.yaml files, a URL (code-host
    file URLs through catalog.integrations), a Feast feature repository (`feast:/path`, read by
    catalog.feast_sync), or every repository of a GitHub organisation / GitLab group (catalog.discovery)."""

    type = models.CharField(max_length=20, choices=LocationType.choices)
    target = models.CharField(max_length=2000, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Registered by the system or a platform admin: its descriptors may name any owner, also when
    # refreshed later (portal.accounts.permissions.location_is_org_wide).
    org_wide = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    next_refresh_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Why the last background refresh could not be stored (the database or its disk, not the
    # descriptors: those are processing errors); cleared by the next refresh that is stored.
    refresh_error = models.TextField(blank=True)
    status = models.CharField(max_length=16, default="pending")  # ok | error | pending
    entity_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # Discovery locations: file URL → repository version (last push, branch) as the last complete scan
    # saw it; files of repositories not pushed to since are not fetched again (catalog.discovery).
    discovery_state = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["target"]

    def __str__(self) -> str:
        return f"{self.type}:{self.target}"

    def get_absolute_url(self) -> str:
        return reverse("catalog:location-detail", args=[self.pk])


class UploadBundle(models.Model):
    """The files of an uploaded folder (catalog/uploads.py; location target `upload:<name>`), stored with
    the registration that read them, so that every node reads the same files: a node's own folder under
    PLINTH_CATALOG_UPLOAD_ROOT is a copy made from here when the digest changes."""

    name = models.CharField(max_length=100, unique=True)  # the folder: slug + hash of `source`
    source = models.CharField(max_length=200)  # the name the uploader gave (e.g. github.com/acme/fraud)
    digest = models.CharField(max_length=64)  # SHA-256 of the packed files: names a version on every node
    files = models.BinaryField()  # zlib-compressed JSON list of [relative path, text]
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"upload:{self.name}"


class ScanFile(models.Model):
    """A descriptor a discovery scan fetched before it stopped (a rate limit), kept so that the next
    scan of the same target takes it from here instead of asking the code host again, while its
    repository's version (last push and branch) is the same. Not catalog state: nothing of a stopped
    scan reaches the catalog. Deleted when a scan of the target completes and is stored; rows older
    than SCAN_FILE_DAYS are ignored, and deleted within the hour (catalog.services.scan_files_prune)."""

    target = models.TextField()  # the discovery location's target, registered or not (yet)
    source = models.TextField()  # the file URL, as the scan names it
    version = models.TextField()  # catalog.discovery.discover's version of the repository
    body = models.BinaryField(null=True)  # None: the repository has no such file (404)
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "source"], name="scanfile_once")]

    def __str__(self) -> str:
        return f"{self.source} @ {self.version}"


class LocationSource(models.Model):
    """One file (or URL) read for a location, with its content hash for skip-if-unchanged."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="sources")
    source = models.CharField(max_length=2000)
    content_hash = models.CharField(max_length=64)
    children = models.JSONField(default=list, blank=True)  # Location targets found in this source

    class Meta:
        constraints = [models.UniqueConstraint(fields=["location", "source"], name="one_row_per_source")]

    def __str__(self) -> str:
        return self.source


class Entity(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ref = models.CharField(max_length=200, unique=True)  # "kind:namespace/name", lowercased
    kind = models.CharField(max_length=40)  # as canonically spelled: "Component", "Model"
    kind_key = models.CharField(max_length=40)
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=63)
    name_key = models.CharField(max_length=63)
    api_version = models.CharField(max_length=100)
    title = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    spec_type = models.CharField(max_length=100, blank=True)
    lifecycle = models.CharField(max_length=100, blank=True)
    owner_ref = models.CharField(max_length=200, blank=True)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="entities",
                                   db_index=False)  # entity_team_name (owner_team, name_key) serves it
    system_ref = models.CharField(max_length=200, blank=True)
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL,
                                  choices=[(v.value, v.value.title()) for v in Visibility])
    tags = models.JSONField(default=list, blank=True)
    data = models.JSONField()
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="entities")
    source = models.CharField(max_length=2000, blank=True)  # file/URL the descriptor came from, or "mlflow"
    content_hash = models.CharField(max_length=64)
    orphan = models.BooleanField(default=False)
    error_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "entities"
        # Every filter column leads an index that continues with name_key, so a filtered list walks
        # one index in display order and stops after a page. There is deliberately no index on
        # visibility: it would tempt SQLite into a multi-index OR for the permission filter, followed
        # by a sort of every visible row.
        indexes = [
            models.Index(fields=["name_key"], name="entity_name"),
            models.Index(fields=["kind_key", "name_key"], name="entity_kind_name"),
            models.Index(fields=["spec_type", "name_key"], name="entity_type_name"),
            models.Index(fields=["lifecycle", "name_key"], name="entity_lifecycle_name"),
            models.Index(fields=["owner_ref", "name_key"], name="entity_owner_name"),
            models.Index(fields=["owner_team", "name_key"], name="entity_team_name"),
            models.Index(fields=["updated_at"], name="entity_updated"),
        ]

    def __str__(self) -> str:
        return self.ref

    def get_absolute_url(self) -> str:
        return reverse("catalog:entity-detail", args=[self.kind_key, self.namespace, self.name])

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def metadata(self) -> dict:
        return self.data.get("metadata", {})

    @property
    def spec(self) -> dict:
        return self.data.get("spec", {}) or {}

    @property
    def annotations(self) -> dict:
        return self.metadata.get("annotations", {}) or {}

    @property
    def links(self) -> list:
        return self.metadata.get("links", []) or []

    @property
    def short_ref(self) -> str:
        return f"{self.kind_key}:{self.namespace}/{self.name}"


class EntityTag(models.Model):
    """Tags in their own table so that tag filters and tag facets use an index."""

    id = RowIdAutoField(primary_key=True)  # bulk-written, referred to by nothing: no AUTOINCREMENT
    # No index of its own: the unique (entity, tag) constraint serves lookups by entity.
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="tag_rows", db_index=False)
    tag = models.CharField(max_length=63)

    class Meta:
        indexes = [models.Index(fields=["tag", "entity"], name="tag_entity")]
        constraints = [models.UniqueConstraint(fields=["entity", "tag"], name="one_tag_per_entity")]

    def __str__(self) -> str:
        return self.tag


class Relation(models.Model):
    """A directed relation between two refs. Both directions are stored, each row remembering the
    entity whose descriptor produced it (`origin`), so re-ingesting an entity replaces exactly its rows.
    A target that does not exist (yet) is kept; the read side flags it."""

    id = RowIdAutoField(primary_key=True)  # bulk-written, referred to by nothing: no AUTOINCREMENT
    origin = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="+", db_index=False)  # relation_origin
    source_ref = models.CharField(max_length=200)
    type = models.CharField(max_length=40)
    target_ref = models.CharField(max_length=200)

    class Meta:
        indexes = [
            # Both directions are stored, so every read goes by source_ref: no index on target_ref.
            models.Index(fields=["source_ref", "type"], name="relation_source"),
            models.Index(fields=["origin"], name="relation_origin"),
        ]

    def __str__(self) -> str:
        return f"{self.source_ref} {self.type} {self.target_ref}"


class ProcessingError(models.Model):
    """An error met while processing a location or an entity; shown on pages and in the API."""

    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="errors")
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.CASCADE, related_name="errors")
    source = models.CharField(max_length=2000, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    field = models.CharField(max_length=300, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "line", "id"]

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.source, self.line) if p)
        return f"{where} {self.field}: {self.message}".strip()


class Star(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stars")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "entity"], name="one_star_per_user")]

    def __str__(self) -> str:
        return f"{self.user} ★ {self.entity}"


class ExperimentRun(models.Model):
    """An MLflow run that produced at least one synced model version: its params, final metrics, metric
    series (bounded, see catalog.experiments.HISTORY_POINTS) and tags, read by the MLflow sync. One row
    per run, however many versions were registered from it; a run no version names any more is dropped."""

    run_id = models.CharField(max_length=64, unique=True)
    experiment_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    # {metric: [[step, value], ...]} for metrics MLflow holds more than one value of; others: absent.
    history = models.JSONField(default=dict)
    tags = models.JSONField(default=dict)
    synced_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name or self.run_id


class RunInput(models.Model):
    """A dataset the run logged with `mlflow.log_input`, with its source named the OpenLineage way
    (`namespace` + `dataset_name`, e.g. `s3://bucket` + `path/file.parquet`) so lineage can join it to
    Dataset entities. `entity`: the Dataset entity it was matched to at the last sync (by the
    `openlineage.io/dataset` annotation, else by name); pages still filter it by visibility."""

    id = RowIdAutoField(primary_key=True)  # rewritten with its run at every sync, referred to by nothing
    run = models.ForeignKey(ExperimentRun, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64, blank=True)
    source_type = models.CharField(max_length=40, blank=True)
    source = models.CharField(max_length=2000, blank=True)  # the source URI, credentials removed
    namespace = models.CharField(max_length=500)
    dataset_name = models.CharField(max_length=1000)
    schema = models.JSONField(default=list)  # [{"name", "type"}]
    context = models.CharField(max_length=100, blank=True)  # training, eval, … (tag mlflow.data.context)
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["namespace", "dataset_name"], name="runinput_dataset")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.dataset_name}"


class ModelVersion(models.Model):
    """A registered-model version synced from MLflow, with its source run's metrics and params (the
    run's other facts: `experiment_run`)."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="model_versions")
    version = models.CharField(max_length=20)
    version_number = models.PositiveIntegerField(default=0)
    aliases = models.JSONField(default=list)
    status = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    run_id = models.CharField(max_length=64, blank=True)
    experiment_run = models.ForeignKey(ExperimentRun, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="versions")
    source = models.CharField(max_length=1000, blank=True)
    metrics = models.JSONField(default=dict)
    params = models.JSONField(default=dict)
    tags = models.JSONField(default=dict)
    created_at_mlflow = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-version_number"]
        constraints = [models.UniqueConstraint(fields=["entity", "version"], name="one_row_per_version")]

    def __str__(self) -> str:
        return f"{self.entity.name} v{self.version}"


class MlflowSyncState(models.Model):
    """When MLflow was last read successfully, so pages can say "MLflow data as of …"."""

    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    models_synced = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"MLflow sync (last success {self.last_success_at})"


class CatalogState(models.Model):
    """A single row whose version changes with every catalog write: caches key on it."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"catalog version {self.version}"


class MlflowSyncJob(models.Model):
    """A "Sync now" asked for on a model page: the page polls it while the Celery task runs."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Syncing"
        DONE = "done", "Synced"
        FAILED = "failed", "Failed"

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="mlflow_sync_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    error = models.TextField(blank=True)
    versions = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["entity", "state"], name="catalog_mlflowjob_entity_state")]

    def __str__(self) -> str:
        return f"MLflow sync of {self.entity_id} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)


class MlflowWebhookDelivery(models.Model):
    """Delivery ids of accepted MLflow webhooks: a replayed delivery is refused. Rows older than the
    timestamp tolerance are pruned (a delivery that old is refused by its timestamp anyway)."""

    delivery_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=60)
    model_name = models.CharField(max_length=300)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.event} {self.model_name} ({self.delivery_id})"
