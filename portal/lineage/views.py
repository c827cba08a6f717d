"""The lineage pages: the full-page graph (`/lineage/?nodeId=…`, the same widget as the entity page's
Lineage tab, which fetches the graph from the JSON API), its landing (`/lineage/` bare: a search for a
dataset or job by name, and the nodes most recently active), and the "unowned assets" page: observed
entities (and MLflow-only models) nobody owns, for platform admins to give an owner team."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from catalog.descriptors.errors import DescriptorError
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.numbers import digits, row_id

from . import graph, selectors, services

# The legend of the graph (static/js/lineage.js colours and labels nodes with the same keys).
KINDS = (("dataset", "Dataset"), ("job", "Job / pipeline"), ("featureset", "Feature set"), ("run", "MLflow run"),
         ("version", "Model version"), ("model", "Model"), ("deployment", "Deployment"), ("other", "Other entity"))
STATES = (("complete", "✓", "Last run succeeded"), ("running", "▶", "Running"), ("fail", "✕", "Last run failed"),
          ("abort", "■", "Aborted"), ("none", "○", "No run recorded"))


def _legend() -> dict:
    return {"lineage_kinds": KINDS, "lineage_states": STATES}


def entity_tab_context(request, entity) -> dict:
    """The entity page's Lineage tab: only the root's id; the graph comes from the API in the browser,
    so the page costs no lineage query beyond this one."""
    return {"lineage_node_id": graph.node_id_for_entity(entity), **_legend()}


LANDING_NODES = 12  # recently active nodes on the landing, and matches of a search shown
MAX_Q = 200


def _graph_url(node_id: str) -> str:
    return f"{reverse('lineage:graph')}?{urlencode({'nodeId': node_id})}"


def _landing(request):
    """`/lineage/` without a node: what the page shows and a way to pick a root. `q` is a node id (opened
    as is) or part of a dataset's or job's name: one visible match opens its graph, several are listed.
    Without `q`, the nodes most recently active that the viewer may see (one query either way)."""
    q = request.GET.get("q", "").strip()
    context = {"q": q, "max_q": MAX_Q, **_legend()}
    if not q:
        context["recent"] = selectors.recent_nodes(request.user, LANDING_NODES)
        return render(request, "lineage/graph.html", context)
    if len(q) > MAX_Q or graph.CONTROL_CHARS.search(q):
        context["error"] = f"q: give a name of at most {MAX_Q} characters, without control characters."
        context["q"] = ""
        return render(request, "lineage/graph.html", context, status=400)
    try:
        graph.parse_node_id(q)
    except graph.NodeIdInvalid:
        pass
    else:  # a node id: the graph page decides whether it exists and may be seen
        return redirect(_graph_url(q))
    matches = selectors.nodes_named_like(request.user, q, LANDING_NODES + 1)
    if len(matches) == 1:
        return redirect(_graph_url(matches[0].node_id))
    context["matches"] = matches[:LANDING_NODES]
    context["more_matches"] = len(matches) > LANDING_NODES
    return render(request, "lineage/graph.html", context)


@require_safe
def graph_page(request):
    """The lineage graph around one node, on a page of its own. The root is checked here (a malformed
    id is a 400 naming `nodeId`; an unknown node and one the user may not see are the same 404); the
    graph itself is drawn in the browser from `GET /api/v1/lineage`, one hop at a time. Without
    `nodeId` at all, the landing: a search for a node and the recently active ones."""
    if "nodeId" not in request.GET:
        return _landing(request)
    node_id = request.GET.get("nodeId", "")  # as sent: a name may end in a space (the API takes it so)
    if not node_id.strip():
        return render(request, "lineage/graph.html", {"error": "nodeId: is required."}, status=400)
    try:
        found = graph.lineage(node_id, user=request.user, depth=0, direction="both")
    except graph.NodeIdInvalid as exc:
        return render(request, "lineage/graph.html", {"error": f"nodeId: {str(exc).removeprefix('nodeId: ')}"},
                      status=400)
    except graph.NodeNotFound as exc:
        raise Http404("No such lineage node") from exc
    root = found.nodes[found.root]
    return render(request, "lineage/graph.html", {"root": root, "node_id": root["id"], **_legend()})


MAX_PAGE_DIGITS = 9  # a page number beyond this is no page of any job


@require_safe
def job_runs(request, job_id: str):
    """Every run of one lineage job, newest first, RUNS_PAGE a page. A missing job id, a non-numeric one,
    a dataset's and a job the viewer may not see (selectors.visible_q, as the graph decides) are the same
    404. Then `page`: not a whole number from 1 is a 400 naming it, a page past the last a 404 naming the
    last. Three queries whatever the page or the number of runs: the job, the count, the page's runs."""
    pk = row_id(job_id)
    job = selectors.visible_job(request.user, pk) if pk else None
    if job is None:
        raise Http404("No such lineage job")
    context = {"job": job, "node_id": job.node_id, "graph_url": _graph_url(job.node_id),
               "retention_days": settings.PLINTH_LINEAGE_RUN_RETENTION_DAYS}
    raw = request.GET.get("page", "1")
    if not digits(raw) or len(raw) > MAX_PAGE_DIGITS or int(raw) < 1:
        shown = raw[:20] + ("…" if len(raw) > 20 else "")
        context["error"] = f"page: give a whole page number from 1 (got {shown!r})."
        return render(request, "lineage/job_runs.html", context, status=400)
    paginator = Paginator(selectors.runs_of_job(job), selectors.RUNS_PAGE)
    number = int(raw)
    if number > paginator.num_pages:
        context["error"] = (f"page: there is no page {number}; this job's runs end at page {paginator.num_pages}.")
        context["last_page"] = paginator.num_pages
        return render(request, "lineage/job_runs.html", context, status=404)
    context["page"] = paginator.page(number)
    return render(request, "lineage/job_runs.html", context)


@require_http_methods(["GET"])
def unowned(request):
    if not permissions.may_claim_unowned(request.user):
        raise PermissionDenied("Only platform admins may see and claim unowned assets.")
    page = Paginator(selectors.unowned_assets(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "lineage/unowned.html", {"page": page, "teams": Team.objects.order_by("name")})


@require_POST
def claim(request):
    if not permissions.may_claim_unowned(request.user):
        raise PermissionDenied("Only platform admins may claim unowned assets.")
    pk = request.POST.get("entity", "")
    entity = get_object_or_404(selectors.unowned_assets(request.user), pk=row_id(pk) or 0)
    team_pk = row_id(request.POST.get("team", ""))
    team = Team.objects.filter(pk=team_pk).first() if team_pk else None
    if team is None:
        messages.error(request, "Choose the team that owns this asset.")
        return redirect("lineage:unowned")
    try:
        services.unowned_claim(entity=Entity.objects.get(pk=entity.pk), team=team, actor=request.user)
    except DescriptorError as exc:
        messages.error(request, str(exc))
        return redirect("lineage:unowned")
    messages.success(request, f"{entity.ref} is now owned by {team.name}.")
    return redirect("lineage:unowned")
