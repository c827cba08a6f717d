"""Allocation: the month's cost lines turned into rows per entity, team, shared share and unallocated.

The rules (docs/finops.md, "Allocation"), in order, for each line:
1. its tag SHARED_TAG_KEY is "true" → a shared cost (step 5);
2. an entity tag (ENTITY_TAG_KEYS, first present) naming a catalog entity → that entity (and its team);
3. its ResourceId listed by an entity's `plinth.dev/cost-resource-ids` annotation (an exact id, or a
   prefix ending in `*`; exact beats prefix, the longest prefix wins) → that entity;
4. a team tag (TEAM_TAG_KEYS) naming a team → that team;
5. otherwise unallocated. Shared costs of a month and currency are split across teams in proportion to
   each team's allocated effective cost (steps 2–4) in that month and currency that everyone may read —
   private entities' cost does not weigh (see _allocations); with no team cost to weigh them by they
   stay unallocated.
A tag naming no entity or team falls through to the next rule. Recomputed for whole months, in one
transaction, after every import and when descriptors change.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.db.models import Count, Sum

from catalog import selectors as catalog_selectors
from catalog.descriptors.refs import parse_ref
from catalog.models import Entity
from portal.accounts.models import Team
from portal.accounts.permissions import Visibility
from portal.core.db import sorts_on_disk

from . import conf
from .models import Allocation, Bucket, CostLine

RESOURCE_ANNOTATION = "plinth.dev/cost-resource-ids"
CENT = Decimal("0.000001")  # shared-cost shares are rounded to this; the last team takes the remainder
CHUNK = 500
ZERO = Decimal(0)


def resource_map() -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Exact ResourceIds and prefixes declared by descriptors (first entity by ref wins a duplicate)."""
    exact: dict[str, int] = {}
    prefixes: list[tuple[str, int]] = []
    for entity_id, declared in (Entity.objects.filter(data__metadata__annotations__has_key=RESOURCE_ANNOTATION)
                                .order_by("ref").values_list("id", "data__metadata__annotations")):
        value = declared.get(RESOURCE_ANNOTATION) if isinstance(declared, dict) else None
        for item in re.split(r"[\s,]+", value if isinstance(value, str) else ""):
            if item.endswith("*") and len(item) > 1:
                prefixes.append((item[:-1], entity_id))
            elif item and item != "*":
                exact.setdefault(item, entity_id)
    prefixes.sort(key=lambda p: -len(p[0]))
    return exact, prefixes


def _match_resource(resource_id: str, exact: dict[str, int], prefixes: list[tuple[str, int]]) -> int | None:
    if not resource_id:
        return None
    hit = exact.get(resource_id)
    if hit is not None:
        return hit
    for prefix, entity_id in prefixes:
        if resource_id.startswith(prefix):
            return entity_id
    return None


def _resolve_entities(raws: set[str]) -> dict[str, int]:
    """Entity tag values → entity ids: `kind:[namespace/]name` refs, or a name unique in the catalog."""
    refs: dict[str, str] = {}
    names: dict[str, str] = {}
    for raw in raws:
        try:
            refs[parse_ref(raw).key()] = raw
        except ValueError:
            if raw and "/" not in raw and ":" not in raw:
                names[raw.lower()] = raw
    out: dict[str, int] = {}
    keys = list(refs)
    for i in range(0, len(keys), CHUNK):
        for entity_id, ref in Entity.objects.filter(ref__in=keys[i:i + CHUNK]).values_list("id", "ref"):
            out[refs[ref]] = entity_id
    found: dict[str, list[int]] = defaultdict(list)
    keys = list(names)
    for i in range(0, len(keys), CHUNK):
        for entity_id, name_key in Entity.objects.filter(name_key__in=keys[i:i + CHUNK]).values_list("id", "name_key"):
            found[name_key].append(entity_id)
    for key, ids in found.items():
        if len(ids) == 1:  # an ambiguous name names nothing
            out[names[key]] = ids[0]
    return out


def _entity_facts(ids: set[int]) -> dict[int, tuple]:
    """id → (team id, visibility, kind, domain ref) for the allocated entities."""
    rows = []
    keys = list(ids)
    for i in range(0, len(keys), CHUNK):
        rows += list(Entity.objects.filter(id__in=keys[i:i + CHUNK]).values_list(
            "id", "owner_team_id", "visibility", "kind_key", "ref", "system_ref", "data__spec__domain"))
    domains = catalog_selectors.system_domains(r[5] for r in rows)
    return {entity_id: (team_id, visibility, kind, catalog_selectors.domain_of(kind, ref, system_ref, own, domains))
            for entity_id, team_id, visibility, kind, ref, system_ref, own in rows}


def _tag(tags: dict, keys: list[str]) -> str:
    for key in keys:
        value = tags.get(key)
        if value:
            return value.strip()
    return ""


def allocate(months: list[str] | None = None) -> dict:
    """Recompute the allocation of `months` (YYYY-MM-DD, first days; None: every month with lines)."""
    if months is None:
        wanted = sorted(set(CostLine.objects.values_list("month", flat=True).distinct())
                        | set(Allocation.objects.values_list("month", flat=True).distinct()))
    else:
        wanted = sorted({date.fromisoformat(m) for m in months})
    rows, shared = _buckets(_grouped(wanted))
    objects = _allocations(rows, shared)
    with transaction.atomic():
        deleted = Allocation.objects.filter(month__in=wanted)._raw_delete(Allocation.objects.db)
        Allocation.objects.bulk_create(objects, batch_size=1000)
    return {"months": [m.isoformat() for m in wanted], "rows": len(objects), "replaced": deleted}


def _grouped(wanted: list[date]) -> dict[tuple, list]:
    """The months' lines summed by what decides where they go: (month, currency, shared, entity tag,
    entity of the resource, team tag) → [billed, effective, lines]. One GROUP BY, read in chunks."""
    entity_keys = list(conf.get("ENTITY_TAG_KEYS"))
    team_keys = list(conf.get("TEAM_TAG_KEYS"))
    shared_key = conf.get("SHARED_TAG_KEY")
    exact, prefixes = resource_map()
    parsed_tags: dict[str, dict] = {"": {}}
    acc: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, 0])
    groups = (CostLine.objects.filter(month__in=wanted).values("month", "currency", "resource_id", "tags")
              .annotate(b=Sum("billed_cost"), e=Sum("effective_cost"), n=Count("id")).order_by()
              .values_list("month", "currency", "resource_id", "tags", "b", "e", "n"))
    with sorts_on_disk():  # the GROUP BY sorts every line of the months
        for month, currency, resource_id, tags_text, billed, effective, n in groups.iterator(chunk_size=5000):
            tags = parsed_tags.get(tags_text)
            if tags is None:
                tags = json.loads(tags_text)
                if len(parsed_tags) > 100_000:
                    parsed_tags = {"": {}}
                parsed_tags[tags_text] = tags
            shared = shared_key and str(tags.get(shared_key, "")).strip().lower() == "true"
            key = (month, currency, bool(shared), "" if shared else _tag(tags, entity_keys),
                   None if shared else _match_resource(resource_id, exact, prefixes),
                   "" if shared else _tag(tags, team_keys))
            slot = acc[key]
            slot[0] += Decimal(billed)
            slot[1] += Decimal(effective)
            slot[2] += n
    return acc


def _buckets(acc: dict[tuple, list]) -> tuple[dict[tuple, list], dict[tuple, list]]:
    """Each group to its bucket: the entity its tag or resource names, else the team its tag names,
    else unallocated — (month, currency, bucket, target) → amounts; and the shared amounts per
    (month, currency), split later."""
    by_tag = _resolve_entities({k[3] for k in acc if k[3]})
    team_names = {k[5] for k in acc if k[5]}
    teams = dict(Team.objects.filter(name__in=list(team_names)).values_list("name", "id")) if team_names else {}
    rows: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, 0])
    shared_total: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, 0])
    for (month, currency, shared, entity_raw, resource_entity, team_raw), amounts in acc.items():
        if shared:
            target = shared_total[(month, currency)]
        else:
            entity_id = by_tag.get(entity_raw) or resource_entity
            if entity_id:
                target = rows[(month, currency, Bucket.ENTITY, entity_id)]
            elif teams.get(team_raw):
                target = rows[(month, currency, Bucket.TEAM, teams[team_raw])]
            else:
                target = rows[(month, currency, Bucket.UNALLOCATED, None)]
        target[0] += amounts[0]
        target[1] += amounts[1]
        target[2] += amounts[2]
    return rows, shared_total


def _allocations(rows: dict[tuple, list], shared_total: dict[tuple, list]) -> list[Allocation]:
    """The rows to store: one per bucket with its entity's team, visibility, kind and domain, and the
    shared amounts split between the teams by their effective cost that month that everyone may read.

    A private entity's cost does not weigh: shared rows are visible to everyone, so from the pool, the
    teams' shares and their visible costs anyone could work out the private cost that tipped the split
    (a team's weight less what they see of it). Its visibility is the entity's at this allocation."""
    facts = _entity_facts({k[3] for k in rows if k[2] == Bucket.ENTITY})
    objects = []
    weights: dict[tuple, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (month, currency, bucket, target), (billed, effective, n) in rows.items():
        team_id, visibility, kind, domain = (None, Visibility.INTERNAL, "", "")
        if bucket == Bucket.ENTITY:
            team_id, visibility, kind, domain = facts.get(target, (None, Visibility.INTERNAL, "", ""))
        elif bucket == Bucket.TEAM:
            team_id = target
        if team_id and visibility != Visibility.PRIVATE:
            weights[(month, currency)][team_id] += effective
        objects.append(Allocation(month=month, currency=currency, bucket=bucket,
                                  entity_id=target if bucket == Bucket.ENTITY else None, owner_team_id=team_id,
                                  visibility=visibility, kind=kind, domain=domain, billed_cost=billed,
                                  effective_cost=effective, lines=n))
    for (month, currency), (billed, effective, n) in shared_total.items():
        objects += _split_shared(month, currency, billed, effective, n, weights.get((month, currency), {}))
    return objects


def _split_shared(month, currency, billed: Decimal, effective: Decimal, n: int, weights: dict[int, Decimal]) -> list:
    positive = {team: w for team, w in sorted(weights.items()) if w > 0}
    total = sum(positive.values(), ZERO)
    if total <= 0:
        return [Allocation(month=month, currency=currency, bucket=Bucket.UNALLOCATED, billed_cost=billed,
                           effective_cost=effective, lines=n, kind="shared")]
    out = []
    left_b, left_e = billed, effective
    teams = list(positive)
    for i, team in enumerate(teams):
        if i == len(teams) - 1:
            share_b, share_e = left_b, left_e
        else:
            share_b = (billed * positive[team] / total).quantize(CENT, rounding=ROUND_HALF_EVEN)
            share_e = (effective * positive[team] / total).quantize(CENT, rounding=ROUND_HALF_EVEN)
            left_b -= share_b
            left_e -= share_e
        out.append(Allocation(month=month, currency=currency, bucket=Bucket.SHARED, owner_team_id=team,
                              billed_cost=share_b, effective_cost=share_e, lines=0))
    return out
