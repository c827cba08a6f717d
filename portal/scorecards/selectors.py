"""Reads of the scorecards app. Results carry their entity's team and visibility, so every list is
filtered by the one permission rule (portal.accounts.permissions.visible_q) without a join."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions
from portal.core import db

from . import definitions
from .filters import EntityFilter
from .models import DailyRollup, LevelChange, ManualResult, Result


def visible_results(user, scorecard: str, *, team: str = "", level: str = "") -> QuerySet:
    qs = permissions.filter_visible(Result.objects.filter(scorecard=scorecard), user)
    if team:
        qs = qs.filter(owner_team__name=team)
    if level:
        qs = qs.filter(level__iexact="" if level.lower() == "none" else level)
    return qs.select_related("entity", "owner_team").order_by("id")


def entity_scorecards(entity) -> list[dict]:
    """Each scorecard that applies to the entity with its result and every check explained (3 queries)."""
    results = {r.scorecard: r for r in Result.objects.filter(entity=entity)}
    manual = {(m.scorecard, m.check_id): m for m in ManualResult.objects.filter(entity=entity).select_related("set_by")}
    history = defaultdict(list)
    for change in LevelChange.objects.filter(entity=entity)[:50]:
        history[change.scorecard].append(change)
    out = []
    for card in definitions.load_all():
        if card.error or not card.applies(entity.kind_key, entity.spec_type, entity.tags, entity.lifecycle):
            continue
        result = results.get(card.name)
        checks = []
        for check in card.checks:
            outcome = (result.checks.get(check.id) if result else None) or [None, "not evaluated yet"]
            checks.append({"check": check, "passed": outcome[0], "reason": outcome[1],
                           "manual": manual.get((card.name, check.id))})
        levels = [{"name": name, "checks": [c for c in checks if c["check"].level == name],
                   "reached": bool(result and result.rank > i)} for i, name in enumerate(card.levels)]
        out.append({"card": card, "result": result, "levels": levels, "history": history.get(card.name, [])})
    return out


def badges_for(entity) -> list[Result]:
    return list(Result.objects.filter(entity=entity).order_by("scorecard"))


def _rollup(card, key: str, now_counts, past_counts) -> list[dict]:
    """Rollup rows per `key` (team or domain): entities per level now, and the change in entities at the
    top level against 7 and 30 days ago. `now_counts`: (key value, level, n); `past_counts`: days →
    (key value, level, n) of that day's DailyRollup. A key with no rollup row that day has no trend."""
    rows: dict[str, dict] = {}
    for value, level, n in now_counts:
        row = rows.setdefault(value, {key: value, "levels": defaultdict(int), "total": 0})
        row["levels"][level] += n
        row["total"] += n
    top = card.levels[-1]
    tops: dict[int, dict[str, int]] = {days: {} for days in past_counts}
    for days, counts in past_counts.items():
        for value, level, n in counts:
            tops[days][value] = tops[days].get(value, 0) + (n if level == top else 0)
    for row in rows.values():
        row["per_level"] = [(name, row["levels"].get(name, 0)) for name in ["", *card.levels]]
        row["top_now"] = row["levels"].get(top, 0)
        for days, before in tops.items():
            row[f"trend_{days}"] = None if row[key] not in before else row["top_now"] - before[row[key]]
    return list(rows.values())


def _past_rollups(user, card, column: str) -> dict[int, list[tuple]]:
    now = timezone.now()
    return {days: list(permissions.filter_visible(DailyRollup.objects.filter(
        scorecard=card.name, day=(now - timedelta(days=days)).date()), user)
        .values_list(column, "level").annotate(n=Sum("count")).order_by()) for days in (7, 30)}


def current_rollup(user, card) -> QuerySet:
    """The latest counts of the scorecard the user may see: today's DailyRollup rows (refreshed after
    every evaluation), or the latest day's before the first evaluation of the day. Every page reads
    these few thousand rows instead of counting 250,000 results (docs/operations.md)."""
    latest = (DailyRollup.objects.filter(scorecard=card.name, day__lte=timezone.now().date())
              .order_by("-day").values("day")[:1])
    return permissions.filter_visible(DailyRollup.objects.filter(scorecard=card.name, day=Subquery(latest)), user)


def refreshed_at(card):
    """When the counts the pages show were last made (None: never)."""
    return (DailyRollup.objects.filter(scorecard=card.name).order_by("-day", "-refreshed_at")
            .values_list("refreshed_at", flat=True).first())


def team_rollup(user, card) -> list[dict]:
    """Per team: entities per level now, and the totals at or above each level 7 and 30 days ago; each
    row's `title` the team's display name ("" for the unowned), read by the same join as its name."""
    rows = list(current_rollup(user, card).values_list("owner_team__name", "owner_team__title", "level")
                .annotate(n=Sum("count")).order_by())
    past = _past_rollups(user, card, "owner_team__name")
    named = {d: [(team or "", level, n) for team, level, n in counts] for d, counts in past.items()}
    out = _rollup(card, "team", [(team or "", level, n) for team, _, level, n in rows], named)
    titles = {team or "": title or team or "" for team, title, _, _ in rows}
    for row in out:
        row["title"] = titles[row["team"]]
    return sorted(out, key=lambda t: t["team"])


OWN_DOMAIN_KINDS = ("system", "domain")  # their domain is their own; everything else's is its system's


def counts_by_domain(results: QuerySet, fields: tuple[str, ...]) -> dict[tuple, int]:
    """Counts of a Result queryset per `fields` + the entity's domain ref ("" when in none), in three
    queries whatever its size: grouped by system (most entities), the few systems and domains one by one,
    and the systems' domains."""
    grouped = list(results.exclude(entity__kind_key__in=OWN_DOMAIN_KINDS)
                   .values_list(*fields, "entity__system_ref").annotate(n=Count("id")).order_by())
    own = list(results.filter(entity__kind_key__in=OWN_DOMAIN_KINDS)
               .values_list(*fields, "entity__kind_key", "entity__ref", "entity__data__spec__domain"))
    domains = catalog_selectors.system_domains(row[-2] for row in grouped)
    out: dict[tuple, int] = defaultdict(int)
    for *key, system_ref, n in grouped:
        out[(*key, domains.get(system_ref or "", ""))] += n
    for *key, kind, ref, domain in own:
        out[(*key, catalog_selectors.domain_of(kind, ref, "", domain, {}))] += 1
    return dict(out)


def domain_rollup(user, card) -> list[dict]:
    """Per domain (and "" for entities in none): entities per level now, and the change in entities at
    the top level against 7 and 30 days ago, as `team_rollup` per team."""
    current = current_rollup(user, card).values_list("domain_ref", "level").annotate(n=Sum("count")).order_by()
    out = _rollup(card, "domain", list(current), _past_rollups(user, card, "domain_ref"))
    # Each domain by its title, when the reader may see its entity (one query); else by its name.
    refs = [r["domain"] for r in out if r["domain"]]
    titles = dict(catalog_selectors.visible_entities(user).filter(ref__in=refs).exclude(title="")
                  .values_list("ref", "title")) if refs else {}
    for row in out:
        row["title"] = titles.get(row["domain"], "")
    return sorted(out, key=lambda r: (r["domain"] == "", r["domain"]))


def level_counts(user, card) -> tuple[dict[str, int], datetime | None]:
    """Entities per level the user may see, and when they were counted (one query)."""
    rows = list(current_rollup(user, card).values("level").annotate(n=Sum("count"), at=Max("refreshed_at")).order_by())
    return {r["level"]: r["n"] for r in rows}, max((r["at"] for r in rows if r["at"]), default=None)


def _level_and_team(qs: QuerySet, chosen: EntityFilter) -> QuerySet:
    """Rollup rows or results (both carry `level` and `owner_team`) of `chosen`'s level and team."""
    if chosen.level is not None:
        qs = qs.filter(level=chosen.level)
    if chosen.unowned:
        return qs.filter(owner_team__isnull=True)
    if chosen.team is not None:
        return qs.filter(owner_team=chosen.team)
    return qs


def rollup_count(user, card, chosen: EntityFilter) -> int:
    """The count the scorecard page shows for the cell of `chosen` (its level, team and domain), from the
    current rollup the user may see (one query)."""
    qs = _level_and_team(current_rollup(user, card), chosen)
    if chosen.domain is not None:
        qs = qs.filter(domain_ref=chosen.domain)
    return qs.aggregate(n=Sum("count"))["n"] or 0


def domain_q(card, domain: str) -> Q:
    """Results whose entity is in `domain` ("": in none) by `counts_by_domain`'s rule: a domain is its
    own, a system's is its `spec.domain`, anything else's is its system's. One query: the systems and
    the other entities the scorecard's results name as their system, with their `spec.domain`."""
    named = Result.objects.filter(scorecard=card.name).exclude(entity__system_ref="").values("entity__system_ref")
    rows = Entity.objects.filter(Q(kind_key="system") | Q(ref__in=named)).values_list("ref", "data__spec__domain")
    owned = [ref for ref, own in rows if (catalog_selectors.domain_ref(own) == domain if domain
                                          else catalog_selectors.domain_ref(own) != "")]
    systems = db.values_in(owned, text=True)
    others = ~Q(entity__kind_key__in=OWN_DOMAIN_KINDS)
    if domain:
        return ((others & Q(entity__system_ref__in=systems)) | Q(entity__kind_key="system", entity__ref__in=systems)
                | Q(entity__kind_key="domain", entity__ref=domain))
    return (others & ~Q(entity__system_ref__in=systems)) | (Q(entity__kind_key="system") & ~Q(entity__ref__in=systems))


def drilldown(user, card, chosen: EntityFilter) -> QuerySet:
    """The results behind one count of the scorecard's rollups, by the rules that count them: the same
    visibility, level, team (`owner_team`, copied from the entity) and domain. Ordered by name for the
    reader, the entity's columns other than its descriptor with them."""
    return (filtered_results(user, card, chosen).defer("entity__data", "entity__description")
            .order_by("entity__name_key", "entity__kind_key", "id"))


def filtered_results(user, card, chosen: EntityFilter) -> QuerySet:
    """The visible results of `chosen` (level, team or unowned, domain or none), unordered: the entity
    list page and the results API filter by this one rule."""
    qs = _level_and_team(permissions.filter_visible(Result.objects.filter(scorecard=card.name), user), chosen)
    if chosen.domain is not None:
        qs = qs.filter(domain_q(card, chosen.domain))
    return qs.select_related("entity", "owner_team")


def next_step(card, result: Result) -> dict | None:
    """The level above the result's, and the first of its checks that fails (in the definition's
    order) with its reason; None at the top level. Read from the result's `checks`: no query."""
    if result.rank >= len(card.levels):
        return None
    level = card.levels[result.rank]
    for check in card.checks:
        passed, reason = (result.checks.get(check.id) or [False, "not evaluated yet"])[:2]
        if check.level == level and not passed:
            return {"level": level, "check": check, "reason": reason}
    return {"level": level, "check": None, "reason": ""}


LISTED_PER_TEAM = 200


def campaign_failing(user, card, check, *, team: str | None = None) -> list[dict]:
    """Per team the user may see results of, how many entities fail the campaign's check (from the
    current counts); for the user's own teams and the chosen `team` ("" = the unowned entities) also
    which ones (at most LISTED_PER_TEAM each, read from that team's results)."""
    counts: dict[tuple, int] = defaultdict(int)
    for team_id, name, failing in current_rollup(user, card).values_list("owner_team_id", "owner_team__name", "failing"):
        n = (failing or {}).get(check.id, 0)
        if n:
            counts[(team_id, name or "")] += n
    mine = permissions.team_ids(user)
    out = []
    for (team_id, name), n in sorted(counts.items(), key=lambda item: item[0][1]):
        listed = None
        if team_id in mine or (team is not None and name == team):
            # The failing ones as rollup_today counts them (the database filters; no checks decoded here).
            qs = (visible_results(user, card.name).filter(owner_team_id=team_id)  # None: IS NULL, the unowned
                  .exclude(**{f"checks__{check.id}__0": True}))
            listed = list(qs.only("id", "entity__ref", "entity__kind_key", "entity__namespace", "entity__name",
                                  "entity__title", "owner_team__name")[:LISTED_PER_TEAM])
        out.append({"team": name, "failing": n, "results": listed})
    return out
