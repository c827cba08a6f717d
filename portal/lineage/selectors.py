"""Reads of the lineage app, filtered by the permission module."""

from __future__ import annotations

from django.conf import settings
from django.db.models import F, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils.http import urlencode

from catalog.models import Entity
from portal.accounts import permissions

from .models import Node, NodeType, Run, node_key

PANEL_RUNS = 10
PANEL_JOBS = 20  # writing jobs of a dataset whose runs the panel shows
RUNS_PAGE = 50  # runs per page of a job's runs page

# Newest first; a run without a recorded start (its START never came) after those with one, on both
# engines (PostgreSQL would put NULLs first, SQLite last), then the newest stored first.
RUN_ORDER = (F("started_at").desc(nulls_last=True), F("pk").desc())


def runs_of_job(node: Node) -> QuerySet[Run]:
    """Every run of a job, in RUN_ORDER (the runs page and `GET /api/v1/lineage/runs`)."""
    return Run.objects.filter(job=node).order_by(*RUN_ORDER)


def _job_page_rows(jobs: QuerySet[Node]) -> Node | None:
    """The one job of `jobs`, with what its runs page and answer show of it and its entity."""
    return (jobs.select_related("entity").only("type", "namespace", "name", "entity__kind_key",
                                               "entity__namespace", "entity__name", "entity__title").first())


def visible_job(user, pk: int) -> Node | None:
    """The job node `pk` when the user may see it (visible_q, as the graph decides); None for a missing
    node, a dataset and a job they may not see alike, so that the caller answers the same 404. One query."""
    return _job_page_rows(Node.objects.filter(visible_q(user), type=NodeType.JOB, pk=pk))


def visible_job_by_candidates(user, candidates) -> Node | None:
    """The job a `job:<namespace>:<name>` id names (its (namespace, name) splits, as graph.parse_node_id
    gives them), when the user may see it. The id resolves as the graph resolves it (the lowest id among
    the splits) before visibility is asked, so an id never names another job for another reader. One query."""
    keys = [node_key(NodeType.JOB, namespace, name) for namespace, name in candidates]
    first = Node.objects.filter(key__in=keys, type=NodeType.JOB).order_by("pk").values("pk")[:1]
    return _job_page_rows(Node.objects.filter(visible_q(user), pk=Subquery(first)))


def visible_q(user) -> Q:
    """Lineage nodes the user may see, as the graph decides: no entity (visible), or a visible entity.
    Empty for a platform admin, who sees every node (`Q(…) | Q()` would be Q(…) alone)."""
    rule = permissions.visible_q(user, prefix="entity__")
    return Q(entity__isnull=True) | rule if rule else Q()


def visible_nodes(user) -> QuerySet[Node]:
    """The nodes the user may see, with what the landing shows of each (entity, last run)."""
    return (Node.objects.filter(visible_q(user)).select_related("entity", "last_run")
            .only("type", "namespace", "name", "updated_at", "entity__kind_key", "entity__namespace",
                  "entity__name", "entity__title", "last_run__state", "last_run__started_at"))


def recent_nodes(user, limit: int) -> list[Node]:
    """The nodes most recently changed that the user may see, newest first (index lineage_node_updated)."""
    return list(visible_nodes(user).order_by("-updated_at", "-pk")[:limit])


def nodes_named_like(user, text: str, limit: int) -> list[Node]:
    """Visible nodes whose name contains `text` (any case), by type and name: at most `limit`."""
    return list(visible_nodes(user).filter(name__icontains=text).order_by("-updated_at", "-pk")[:limit])


def entity_panel(entity: Entity, user) -> dict:
    """The run history panel of an entity page: the last PANEL_RUNS runs of the job it maps to (a
    Pipeline), or of the jobs that wrote it (a Dataset, at most PANEL_JOBS of them), and how many runs
    those jobs have in all, so that the panel says what it leaves out. The page itself was already checked
    for visibility; a writing job the reader may not see (another team's private pipeline) is left out
    with its runs — from the rows and from the count — as the graph leaves it out, and nothing says it
    exists. Three queries at most, whatever the number of runs or jobs: the count only when the panel
    is full (otherwise it shows every run)."""
    nodes = list(Node.objects.filter(entity=entity).only("pk", "type", "namespace", "name", "last_run_id"))
    if not nodes:
        return {"lineage_nodes": [], "lineage_runs": [], "lineage_many_jobs": False, "lineage_runs_total": 0,
                "lineage_jobs_capped": False, "lineage_jobs": []}
    job_nodes = [n for n in nodes if n.type == "job"]
    capped = False
    if not job_nodes:
        writers = Node.objects.filter(visible_q(user), out_edges__target__in=nodes, type="job")
        job_nodes = list(writers.only("pk", "type", "namespace", "name").distinct().order_by("pk")[:PANEL_JOBS + 1])
        capped, job_nodes = len(job_nodes) > PANEL_JOBS, job_nodes[:PANEL_JOBS]
    jobs = [n.pk for n in job_nodes]
    runs = list(Run.objects.filter(job_id__in=jobs).select_related("job").order_by(*RUN_ORDER)[:PANEL_RUNS])
    total = len(runs) if len(runs) < PANEL_RUNS else Run.objects.filter(job_id__in=jobs).count()
    return {"lineage_nodes": nodes, "lineage_runs": runs, "lineage_many_jobs": len({r.job_id for r in runs}) > 1,
            "lineage_runs_total": total, "lineage_jobs_capped": capped, "lineage_jobs_capped_at": PANEL_JOBS,
            # Each job's runs page (every run, paged), for the jobs the panel draws from.
            "lineage_jobs": [(n, reverse("lineage:job-runs", args=[n.pk])) for n in job_nodes],
            # The node the entity page's Lineage tab opens on (graph.node_id_for_entity), from the rows here.
            "lineage_graph_url": f"{reverse('lineage:graph')}?{urlencode({'nodeId': min(nodes, key=_pk).node_id})}",
            "lineage_retention_days": settings.PLINTH_LINEAGE_RUN_RETENTION_DAYS}


def _pk(node: Node) -> int:
    return node.pk


def unowned_assets(user) -> QuerySet[Entity]:
    """Entities without an owner team that no descriptor defines (observed, or from MLflow only)."""
    return permissions.filter_visible(
        Entity.objects.filter(owner_team__isnull=True, location__isnull=True), user).order_by("kind_key", "name_key")
