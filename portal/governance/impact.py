"""Downstream impact of deprecate and retire requests.

When a request's gates run, the lineage graph's downstream list of its target is computed over every
node whoever may see it (`permissions.SYSTEM`) and stored with the request (`RequestImpact`): reviewers
see what depended on the target at decision time. From that one snapshot:

* the `downstream_impact` gate reads a summary from the **requester's** point of view (`gate_summary`):
  critical assets (production models, live deployments) every signed-in user may see are named, private
  ones are counted, and those the requester may not see are counted as "… you cannot see" — the gate
  blocks on them all, and its messages, which everyone who may read the request reads, name no private
  asset;
* each reader of the request page sees the assets they may see and a count of the others (`for_viewer`);
* the members of the teams that own downstream assets are notified once per request (`notify_owners`).

The graph belongs to the lineage app, which sits above governance: it registers the function that
computes the list (`register_provider`) in its `ready()`, so governance never imports it. Without a
provider the snapshot records why, and the gate fails closed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Membership

from .models import ActionType, ApprovalRequest, RequestImpact

ACTIONS = frozenset({ActionType.DEPRECATE, ActionType.RETIRE})
HOPS = 10
MAX_ITEMS = 5000  # a snapshot larger than this keeps the critical items and the first others, and says so
ITEM_FIELDS = ("id", "type", "kind", "name", "title", "ref", "url", "team", "lifecycle", "distance",
               "critical", "reason")

# (entity, hops) -> (root node id, [item dicts as graph.impact gives them]); raises on failure.
Provider = Callable[[Any, int], tuple[str, list[dict]]]
_provider: Provider | None = None


def register_provider(provider: Provider) -> None:
    global _provider
    _provider = provider


def applies(req: ApprovalRequest) -> bool:
    return req.action in ACTIONS


# -- computing the snapshot ----------------------------------------------------------------------


def compute(req: ApprovalRequest) -> RequestImpact:
    """The snapshot for `req`, written (or rewritten) in the caller's transaction. Never raises: a
    failure is recorded in `error`, and the gate reading it fails closed."""
    snapshot = RequestImpact(request=req, hops=HOPS)
    try:
        if _provider is None:
            raise LookupError("no lineage graph is installed (portal.lineage registers it)")
        if req.entity is None:
            raise LookupError(f"{req.target_ref} is no longer in the catalog")
        with transaction.atomic():  # a failed query inside must not abort the gates' transaction
            snapshot.root, raw = _provider(req.entity, HOPS)
            items = _with_visibility([clean_item(i) for i in raw])
    except Exception as exc:  # fail closed: the gate says the impact is unknown and blocks
        snapshot.error = f"{type(exc).__name__}: {exc}"[:2000]
        items = []
    items.sort(key=lambda i: (not i["critical"], i["distance"], i["kind"], i["team"], i["name"]))
    snapshot.total = len(items)
    snapshot.critical = sum(1 for i in items if i["critical"])
    snapshot.items = items[: max(MAX_ITEMS, snapshot.critical)]
    RequestImpact.objects.filter(request=req).delete()
    snapshot.save()
    return snapshot


def clean_item(item: dict) -> dict:
    """An item of graph.impact with every field the pages read, typed."""
    out = {key: item.get(key) for key in ITEM_FIELDS}
    for key in ("id", "type", "kind", "name", "title", "ref", "url", "team", "lifecycle", "reason"):
        out[key] = str(out[key] or "")
    out["kind"] = out["kind"].lower() or out["type"].lower()
    out["critical"] = bool(out["critical"])
    out["distance"] = int(out["distance"] or 0)
    return out


def governing_ref(item: dict) -> str:
    """The catalog entity whose owner and visibility decide who may see the item: its own, or for a
    model version its model's (`version:<kind>:<ns>:<name>:<version>`)."""
    if item.get("ref"):
        return item["ref"]
    parts = str(item.get("id", "")).split(":")
    if parts[0] == "version" and len(parts) >= 5:
        return f"{parts[1]}:{parts[2]}/{':'.join(parts[3:-1])}".lower()
    return ""


def _with_visibility(items: list[dict]) -> list[dict]:
    """Add each item's owner team id and visibility, read from its entity. A lineage node mapped to no
    entity is shown to every signed-in user (the graph's rule), so it counts as internal; a ref whose
    entity cannot be found counts as private to nobody: only platform admins see its name."""
    refs = {governing_ref(i) for i in items} - {""}
    facts = {
        ref: (team_id, visibility)
        for ref, team_id, visibility in Entity.objects.filter(ref__in=refs).values_list(
            "ref", "owner_team_id", "visibility")
    } if refs else {}
    for item in items:
        ref = governing_ref(item)
        team_id, visibility = facts.get(ref, (None, permissions.Visibility.PRIVATE)) if ref else (
            None, permissions.Visibility.INTERNAL)
        item["team_id"], item["visibility"] = team_id, str(visibility)
    return items


# -- the gate's input ----------------------------------------------------------------------------


def plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1] + 'ies' if noun.endswith('y') and noun[-2:] != 'ey' else noun + 's'}"


def gate_summary(snapshot: RequestImpact | None, requester) -> dict:
    """`input.impact` for the downstream_impact gate (see the policy's header)."""
    if snapshot is None or snapshot.error:
        return {"computed": False, "hops": snapshot.hops if snapshot else HOPS,
                "error": snapshot.error if snapshot else "not computed"}
    kinds = Counter(i["kind"] for i in snapshot.items)
    kinds.update({"asset": snapshot.total - len(snapshot.items)} if snapshot.total > len(snapshot.items) else {})
    named, private, hidden = [], Counter(), Counter()
    for item in snapshot.items:
        if not item["critical"]:
            continue
        if item["visibility"] == permissions.Visibility.INTERNAL:
            named.append({"ref": item["ref"] or item["id"], "kind": item["kind"], "reason": item["reason"],
                          "team": item["team"]})
        elif permissions.may_see_owned(requester, item["team_id"], item["visibility"]):
            private[item["reason"]] += 1
        else:
            hidden[item["reason"]] += 1
    return {
        "computed": True,
        "hops": snapshot.hops,
        "total": snapshot.total,
        "total_label": plural(snapshot.total, "downstream asset"),
        "by_kind": [{"kind": k, "count": n, "label": plural(n, k)} for k, n in sorted(kinds.items())],
        "critical": named,
        "private": [{"reason": r, "count": n, "label": plural(n, f"private {r}")} for r, n in sorted(private.items())],
        "hidden": [{"reason": r, "count": n, "label": plural(n, r)} for r, n in sorted(hidden.items())],
    }


# -- reading it ----------------------------------------------------------------------------------


def group(items: Iterable[dict]) -> list[dict]:
    """Items grouped by kind and owning team, groups holding critical items first."""
    groups: dict[tuple[str, str], dict] = {}
    for item in items:
        key = (item["kind"], item.get("team") or "")
        entry = groups.setdefault(key, {"kind": key[0], "team": key[1], "items": [], "critical": 0})
        entry["items"].append(item)
        entry["critical"] += bool(item.get("critical"))
    for entry in groups.values():
        entry["items"].sort(key=lambda i: (not i.get("critical"), i.get("distance", 0), i.get("name", "")))
    return sorted(groups.values(), key=lambda g: (g["critical"] == 0, g["kind"], g["team"]))


def visible_items(user, items: list[dict]) -> list[dict]:
    """The items `user` may see now (one query): an entity that still exists decides by its current
    owner and visibility, one that is gone by what the snapshot recorded."""
    refs = {governing_ref(i) for i in items} - {""}
    current = {
        ref: (team_id, visibility)
        for ref, team_id, visibility in Entity.objects.filter(ref__in=refs).values_list(
            "ref", "owner_team_id", "visibility")
    } if refs else {}
    out = []
    for item in items:
        team_id, visibility = current.get(governing_ref(item), (item.get("team_id"), item.get("visibility")))
        if permissions.may_see_owned(user, team_id, visibility or permissions.Visibility.PRIVATE):
            out.append(item)
    return out


def for_viewer(snapshot: RequestImpact | None, user) -> dict | None:
    """The request page's impact section for one reader."""
    if snapshot is None:
        return None
    shown = visible_items(user, snapshot.items)
    seen = {id(i) for i in shown}
    hidden_critical = Counter(i["reason"] for i in snapshot.items if i["critical"] and id(i) not in seen)
    return {
        "snapshot": snapshot,
        "groups": group(shown),
        "shown": len(shown),
        "hidden": snapshot.total - len(shown),
        "critical_shown": sum(1 for i in shown if i["critical"]),
        "hidden_critical": [plural(n, r) for r, n in sorted(hidden_critical.items())],
        "truncated": snapshot.total > len(snapshot.items),
    }


# -- notifying the owners ------------------------------------------------------------------------


def owners_to_notify(req: ApprovalRequest, snapshot: RequestImpact) -> list[tuple[Any, list[dict]]]:
    """(user, the downstream items of their teams) for every active member of a team that owns a
    downstream asset, who may see the request (a link they could not open tells them nothing, and its
    text would name a target they may not see), except the requester."""
    by_team: dict[int, list[dict]] = {}
    for item in snapshot.items:
        if item.get("team_id"):
            by_team.setdefault(item["team_id"], []).append(item)
    if not by_team:
        return []
    memberships = list(Membership.objects.filter(team_id__in=by_team).values_list("user_id", "team_id"))
    user_ids = {uid for uid, _ in memberships} - {req.requester_id}
    out = []
    for user in get_user_model().objects.filter(pk__in=user_ids, is_active=True).order_by("pk"):
        # A background task, bounded by the owners' number: the request's own read rule, per user.
        if not ApprovalRequest.objects.filter(permissions.visible_requests_q(user), pk=req.pk).exists():
            continue
        teams = sorted({tid for uid, tid in memberships if uid == user.pk})
        out.append((user, [i for tid in teams for i in by_team[tid]]))
    return out


def owner_message(summary: str, items: list[dict]) -> str:
    """One line for one owner: only their own team's assets, which they may see."""
    names = ", ".join(i["ref"] or i["name"] for i in items[:3])
    if len(items) > 3:
        names += f" and {len(items) - 3} more"
    critical = sum(1 for i in items if i["critical"])
    flag = f", {critical} of them in production or live" if critical else ""
    verb = "depends" if len(items) == 1 else "depend"
    return f"{summary}: {plural(len(items), 'asset')} of your team {verb} on it{flag} ({names})"
