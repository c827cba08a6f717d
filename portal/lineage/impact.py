"""Impact analysis in the browser: "What depends on this?" — the entity page's Impact tab, its CSV
download, and the provider that lets governance snapshot the same list on deprecate/retire requests.

Everything reads `graph.impact` (downstream only, over 1–10 hops). A reader sees what they may see and a
count of the rest ("N hidden"); the governance snapshot asks as `permissions.SYSTEM`, so its gate
counts private assets of other teams too (portal/governance/impact.py decides who reads their names).
"""

from __future__ import annotations

import csv
import io

from django.http import Http404, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from catalog import extensions, selectors
from portal.accounts import permissions
from portal.core.numbers import digits
from portal.core.spreadsheet import safe_cell
from portal.governance import impact as governance_impact

MIN_HOPS, MAX_HOPS, DEFAULT_HOPS = 1, 10, 10
# Kinds that are not lineage nodes: people, teams and locations have no downstream.
NOT_IN_LINEAGE = frozenset({"user", "group", "location"})
CSV_COLUMNS = ("kind", "team", "name", "title", "ref", "lifecycle", "distance", "critical", "reason", "url")


class HopsInvalid(ValueError):
    pass


def parse_hops(raw: str | None) -> int:
    """`hops` from the query string: 1–10, 10 when absent. Anything else names the parameter."""
    if raw is None or raw == "":
        return DEFAULT_HOPS
    if not digits(raw) or not MIN_HOPS <= int(raw) <= MAX_HOPS:
        raise HopsInvalid(f"hops: a whole number from {MIN_HOPS} to {MAX_HOPS}, not {raw[:40]!r}")
    return int(raw)


def downstream(user, entity, hops: int) -> dict:
    """What `user` may see downstream of `entity`, grouped, with the counts the page and CSV show."""
    from . import graph

    imp = graph.impact(graph.node_id_for_entity(entity), user=user, hops=hops)
    items = [governance_impact.clean_item(i) for i in imp.items]
    critical = [i for i in items if i["critical"]]
    return {
        "items": items,
        "groups": governance_impact.group(items),
        "total": len(items),
        "critical": len(critical),
        "hidden": int(imp.hidden),
        "truncated": bool(getattr(imp, "truncated", False)),
    }


def tab_context(request, entity) -> dict:
    context: dict = {"hops_choices": range(MIN_HOPS, MAX_HOPS + 1)}
    try:
        hops = parse_hops(request.GET.get("hops"))
    except HopsInvalid as exc:
        return {**context, "hops": DEFAULT_HOPS, "impact_error": str(exc), "tab_status": 400}
    context["hops"] = hops
    context["impact"] = downstream(request.user, entity, hops)
    context["impact_csv"] = reverse(
        "lineage:impact-csv", args=[entity.kind_key, entity.namespace, entity.name]) + f"?hops={hops}"
    context["impact_can_request"] = permissions.can(request.user, permissions.Action.REQUEST, entity)
    return context


@require_safe
def impact_csv(request, kind: str, namespace: str, name: str) -> HttpResponse:
    """The Impact tab's list as CSV: one row per downstream asset the reader may see, critical first,
    and a last row counting the hidden ones."""
    entity = selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None or entity.kind_key in NOT_IN_LINEAGE:
        raise Http404("No such entity")
    try:
        hops = parse_hops(request.GET.get("hops"))
    except HopsInvalid as exc:
        return HttpResponse(f"{exc}\n", status=400, content_type="text/plain; charset=utf-8")
    result = downstream(request.user, entity, hops)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for group in result["groups"]:
        for item in group["items"]:
            writer.writerow([safe_cell(item.get(c)) for c in CSV_COLUMNS])
    if result["hidden"]:
        hidden = governance_impact.plural(result["hidden"], "downstream asset")
        writer.writerow(["(hidden)", "", f"{hidden} you may not see", *[""] * (len(CSV_COLUMNS) - 3)])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    filename = f"impact-{entity.kind_key}-{entity.namespace}-{entity.name}-{hops}hops.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def snapshot_provider(entity, hops: int) -> tuple[str, list[dict]]:
    """For governance's request snapshot: every downstream asset, whoever may see it (the gate counts
    them all; governance decides who reads which name)."""
    from . import graph

    node = graph.node_id_for_entity(entity)
    return node, list(graph.impact(node, user=permissions.SYSTEM, hops=hops).items)


def register() -> None:
    extensions.register_tab(extensions.EntityTab(
        key="impact",
        label="Impact",
        template="lineage/impact_tab.html",
        applies=lambda entity: entity.kind_key not in NOT_IN_LINEAGE,
        context=tab_context,
        order=75,
    ))
    governance_impact.register_provider(snapshot_provider)
