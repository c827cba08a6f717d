"""OpenLineage storage: the graph's nodes (datasets and jobs), its edges (dataset → job input,
job → dataset output, and column-level edges), the runs of each job, and the raw events they came from.

Designed for the graph queries built on it: `Edge` is keyed (source, target) for downstream walks and
indexed (target, source) for upstream walks, so a recursive CTE reads one index range per hop in either
direction; nodes are found by `key` (a hash of type, namespace and name) without long-string indexes."""

from __future__ import annotations

import hashlib

from django.db import models

from catalog.models import Entity


class NodeType(models.TextChoices):
    DATASET = "dataset", "Dataset"
    JOB = "job", "Job"


class RunState(models.TextChoices):
    START = "START", "Started"
    RUNNING = "RUNNING", "Running"
    COMPLETE = "COMPLETE", "Complete"
    FAIL = "FAIL", "Failed"
    ABORT = "ABORT", "Aborted"
    OTHER = "OTHER", "Other"


TERMINAL_STATES = frozenset({RunState.COMPLETE, RunState.FAIL, RunState.ABORT})


def node_key(type_: str, namespace: str, name: str) -> str:
    """The node's identity as one fixed-width column (namespace and name may be 1,000 characters each)."""
    return hashlib.sha256(f"{type_}\0{namespace}\0{name}".encode()).hexdigest()


class Node(models.Model):
    """A dataset or a job, by OpenLineage namespace + name (normalised, credentials stripped)."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=64)  # node_key(type, namespace, name); unique (Meta)
    type = models.CharField(max_length=8, choices=NodeType.choices)
    namespace = models.CharField(max_length=1000)
    name = models.CharField(max_length=1000)
    # The catalog entity it maps to: declared (annotation openlineage.io/job|dataset) or observed.
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The latest value of each facet the node carried (schema, documentation, ownership, tags, sql, …).
    facets = models.JSONField(default=dict, blank=True)
    # Jobs: their latest run (by start), so the graph colours nodes without reading run history.
    last_run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # A constraint rather than unique=True: on PostgreSQL a unique CharField also gets a second,
        # pattern-ops index for LIKE, which no query of a hash needs and every insert would maintain.
        constraints = [models.UniqueConstraint(fields=["key"], name="lineage_node_key_once")]
        indexes = [models.Index(fields=["type", "namespace"], name="lineage_node_type_ns"),
                   # the landing's "recently active" (selectors.visible_nodes, newest first): without it a
                   # sort of every node, 0.4 s at 250k on SQLite
                   models.Index(fields=["updated_at", "id"], name="lineage_node_updated")]

    def __str__(self) -> str:
        return f"{self.type}:{self.namespace}:{self.name}"

    @property
    def node_id(self) -> str:
        """Marquez's node id: `dataset:<ns>:<name>` or `job:<ns>:<name>`."""
        return f"{self.type}:{self.namespace}:{self.name}"


class Run(models.Model):
    """One run of a job, merged from its events (a late START never undoes a COMPLETE)."""

    id = models.BigAutoField(primary_key=True)
    run_id = models.UUIDField(unique=True)
    job = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="runs", db_index=False)  # run_job_started
    state = models.CharField(max_length=10, choices=RunState.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The eventTime of the event that set `state`: an older event arriving later does not change it.
    state_time = models.DateTimeField()
    error_message = models.TextField(blank=True)
    parent_run_id = models.UUIDField(null=True, blank=True)
    # Run facets (parent, processing_engine, errorMessage, nominalTime, …) and the job facets sent with
    # the run (sql, sourceCodeLocation, ownership, documentation, tags, jobType), latest value of each.
    facets = models.JSONField(default=dict, blank=True)
    job_facets = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["job", "started_at"], name="run_job_started"),
            models.Index(fields=["parent_run_id"], name="run_parent"),
            models.Index(fields=["ended_at"], name="run_ended"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.state}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None


class EventKind(models.TextChoices):
    RUN = "run", "RunEvent"
    DATASET = "dataset", "DatasetEvent"
    JOB = "job", "JobEvent"


class Event(models.Model):
    """A received event as stored (credentials stripped). `dedupe` makes a resend a no-op: a RunEvent
    by (runId, eventType, eventTime), a Dataset/JobEvent by (its node, eventTime)."""

    id = models.BigAutoField(primary_key=True)
    dedupe = models.CharField(max_length=64)  # unique (Meta, as Node.key)
    kind = models.CharField(max_length=8, choices=EventKind.choices)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=10, blank=True)
    event_time = models.DateTimeField()
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dedupe"], name="lineage_event_dedupe_once")]
        indexes = [models.Index(fields=["received_at"], name="lineage_event_received")]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_type} {self.event_time:%Y-%m-%dT%H:%M:%S}"


class Edge(models.Model):
    """dataset → job (the job read it) or job → dataset (the job wrote it), with the latest run that
    drew it. Cycles are stored as they come; traversal stops at nodes already seen."""

    id = models.BigAutoField(primary_key=True)
    source = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="out_edges", db_index=False)
    target = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="in_edges", db_index=False)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="lineage_edge_once")]
        indexes = [models.Index(fields=["target", "source"], name="lineage_edge_upstream")]

    def __str__(self) -> str:
        return f"{self.source_id} → {self.target_id}"


class ColumnEdge(models.Model):
    """One input field feeding one output field (the columnLineage facet of an output dataset)."""

    id = models.BigAutoField(primary_key=True)
    source = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+", db_index=False)
    source_field = models.CharField(max_length=300)
    target = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+", db_index=False)
    target_field = models.CharField(max_length=300)
    # [{"type": "DIRECT", "subtype": "IDENTITY", "masking": false, "description": …}, …]
    transformations = models.JSONField(default=list, blank=True)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "target_field", "source", "source_field"],
                                               name="lineage_column_edge_once")]
        indexes = [models.Index(fields=["source", "source_field"], name="lineage_column_upstream")]

    def __str__(self) -> str:
        return f"{self.source_id}.{self.source_field} → {self.target_id}.{self.target_field}"


# Graph keys: one integer per node of the unified graph. A lineage node keeps its own id (> 0), so
# `Edge` is walked as it is; the other nodes take negative keys (entity, MLflow run, model version).
KEY_ENTITY, KEY_RUN, KEY_VERSION = 1, 2, 3


def entity_key(pk: int) -> int:
    return -(4 * pk + KEY_ENTITY)


def entity_key_sql(column: str) -> str:
    """`entity_key` of an id column, as SQL."""
    return f"-(4 * {column} + {KEY_ENTITY})"


def run_key(pk: int) -> int:
    return -(4 * pk + KEY_RUN)


def version_key(pk: int) -> int:
    return -(4 * pk + KEY_VERSION)


def split_key(key: int) -> tuple[int, int]:
    """(0 for a lineage node | KEY_ENTITY | KEY_RUN | KEY_VERSION, row id)."""
    if key > 0:
        return 0, key
    return -key % 4, -key // 4


class EdgeOrigin(models.TextChoices):
    RELATION = "relation", "Catalog relation"
    MLFLOW = "mlflow", "MLflow run"
    DEPLOYMENT = "deployment", "Deployment"


class GraphEdge(models.Model):
    """An edge of the unified graph that OpenLineage did not draw: a catalog relation oriented upstream →
    downstream, an MLflow run's input → run → model version → model, a model version → deployment.
    Endpoints are graph keys (`portal.lineage.graph`): a lineage node's own id (> 0), or a negative key
    for a catalog entity, an MLflow run or a model version. `owner` is the catalog entity whose change
    recomputes the row (the descriptor that declared the relation, the model whose versions were
    synced, the Deployment entity), so a refresh replaces exactly its rows. OpenLineage edges are not
    copied here: the walk reads `Edge` and this table together (docs/lineage.md, "Why two tables")."""

    id = models.BigAutoField(primary_key=True)
    source = models.BigIntegerField()
    target = models.BigIntegerField()
    origin = models.CharField(max_length=12, choices=EdgeOrigin.choices)
    owner = models.BigIntegerField()  # a catalog entity id (no FK: rows follow the entity's signals)
    label = models.CharField(max_length=40, blank=True)  # the relation type, or input/trained/registered/…

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "origin", "source", "target"],
                                               name="lineage_graphedge_once")]
        indexes = [models.Index(fields=["source", "target"], name="lineage_graphedge_down"),
                   models.Index(fields=["target", "source"], name="lineage_graphedge_up")]

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.origin})"
