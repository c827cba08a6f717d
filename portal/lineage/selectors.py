"""Reads of the lineage app, filtered by the permission module."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.http import urlencode

from catalog.models import Entity
from portal.accounts import permissions

from .models import Node, Run

PANEL_RUNS = 10
PANEL_JOBS = 20  # writing jobs of a dataset whose runs the panel shows


def runs_of_job(node: Node) -> QuerySet[Run]:
    return Run.objects.filter(job=node).order_by("-started_at", "-pk")


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
                "lineage_jobs_capped": False}
    jobs = [n.pk for n in nodes if n.type == "job"]
    capped = False
    if not jobs:
        writers = Node.objects.filter(visible_q(user), out_edges__target__in=nodes, type="job")
        jobs = list(writers.values_list("pk", flat=True).distinct().order_by("pk")[:PANEL_JOBS + 1])
        capped, jobs = len(jobs) > PANEL_JOBS, jobs[:PANEL_JOBS]
    runs = list(Run.objects.filter(job_id__in=jobs).select_related("job").order_by("-started_at", "-pk")[:PANEL_RUNS])
    total = len(runs) if len(runs) < PANEL_RUNS else Run.objects.filter(job_id__in=jobs).count()
    return {"lineage_nodes": nodes, "lineage_runs": runs, "lineage_many_jobs": len({r.job_id for r in runs}) > 1,
            "lineage_runs_total": total, "lineage_jobs_capped": capped, "lineage_jobs_capped_at": PANEL_JOBS,
            # The node the entity page's Lineage tab opens on (graph.node_id_for_entity), from the rows here.
            "lineage_graph_url": f"{reverse('lineage:graph')}?{urlencode({'nodeId': min(nodes, key=_pk).node_id})}",
            "lineage_retention_days": settings.PLINTH_LINEAGE_RUN_RETENTION_DAYS}


def _pk(node: Node) -> int:
    return node.pk


def unowned_assets(user) -> QuerySet[Entity]:
    """Entities without an owner team that no descriptor defines (observed, or from MLflow only)."""
    return permissions.filter_visible(
        Entity.objects.filter(owner_team__isnull=True, location__isnull=True), user).order_by("kind_key", "name_key")
