"""Writes of the scorecards app: evaluating entities (in batches), manual check answers (audited) and
campaign notifications. A level is reached only when every check at it and below passes (OpsLevel)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from celery import current_app
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from catalog.models import Entity
from portal.accounts import permissions
from portal.core.audit import audit_record
from portal.core.db import analyze_grown, insert_values, update_values, values_in

from . import conf, definitions, engine, facts
from .definitions import Scorecard
from .models import DailyRollup, LevelChange, ManualResult, Result

log = logging.getLogger("plinth.scorecards")


def level_for(card: Scorecard, outcomes: dict[str, list]) -> tuple[str, int]:
    """The highest level whose checks, and those of every level below, all pass."""
    level, rank = "", 0
    for i, name in enumerate(card.levels):
        if not all(outcomes.get(c.id, [False])[0] for c in card.checks if c.level == name):
            break
        level, rank = name, i + 1
    return level, rank


def _manual_outcome(row: ManualResult | None, now: datetime) -> list:
    if row is None:
        return [False, "not recorded"]
    if row.expires_at <= now:
        return [False, f"expired on {row.expires_at:%Y-%m-%d}"]
    return [row.passed, ""]


def evaluate_entities(*, entity_ids: list[int] | None = None, now: datetime | None = None) -> dict:
    """Evaluate the given entities (None: all of them) against every scorecard; store what changed.
    Returns counts: entities, results written, level changes."""
    now = now or timezone.now()
    cards = definitions.load_all()
    healthy = [c for c in cards if not c.error]
    compiled = {c.name: engine.compiled(c) for c in healthy}
    batch = max(1, int(conf.get("BATCH")))
    stats = {"entities": 0, "written": 0, "changes": 0}
    if entity_ids is not None:
        ids = sorted(set(entity_ids))
        chunks = ((Entity.objects.filter(id__in=values_in(ids[i:i + batch])), False) for i in range(0, len(ids), batch))
    else:
        chunks = _keyset(batch)
    for queryset, whole_range in chunks:
        rows = facts.entity_rows(queryset.order_by("id"))
        if rows:
            _evaluate_batch(rows, healthy, compiled, now, stats, whole_range=whole_range)
    # A broken or removed scorecard keeps no results: no entity shows a level it cannot vouch for.
    stale = Result.objects.exclude(scorecard__in=[c.name for c in healthy])
    if entity_ids is not None:
        stale = stale.filter(entity_id__in=values_in(entity_ids))
    deleted, _ = stale.delete()
    # A first evaluation of a large catalog: planner statistics now, not when autovacuum comes by (the
    # scorecard pages read these tables; see portal.core.db.analyze_grown).
    analyze_grown([Result._meta.db_table], stats["written"])
    analyze_grown([LevelChange._meta.db_table], stats["changes"])
    if entity_ids is None:
        stats["rollup_rows"] = rollup_today(now=now)  # the whole catalog: today's counts now
    elif stats["written"] or deleted:
        refresh_soon()
    return stats


def _keyset(batch: int):
    """Every entity, a batch at a time, each batch an id range (cheap to filter, whatever its size)."""
    last = 0
    while True:
        ids = list(Entity.objects.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return
        last = ids[-1]
        yield Entity.objects.filter(id__gte=ids[0], id__lte=last), True


def _digest(level: str, checks: dict, row: dict, version: int) -> str:
    text = repr((level, checks, row["owner_team_id"], row["visibility"], version))  # cheaper than JSON
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _evaluate_batch(rows: list[dict], cards: list[Scorecard], compiled: dict, now: datetime, stats: dict, *,
                    whole_range: bool) -> None:
    """One batch: facts (a constant number of queries), every scorecard's checks, then the writes as a few
    statements: new results, changed results, level changes, and when the rest was seen (`_write`)."""
    lo, hi = rows[0]["id"], rows[-1]["id"]
    in_batch = {r["id"] for r in rows}
    # Every entity of an id range (the nightly pass), or chosen ones: the range or the list selects results.
    scope = Q(entity_id__gte=lo, entity_id__lte=hi) if whole_range else Q(entity_id__in=values_in(in_batch))
    entity_facts = facts.gather(rows, now, scope={"entity_id__gte": lo, "entity_id__lte": hi} if whole_range else None)
    manual = {(m.entity_id, m.scorecard, m.check_id): m
              for m in ManualResult.objects.filter(scope) if m.entity_id in in_batch}
    existing = {(e, sc): (pk, digest, level) for pk, e, sc, digest, level in
                Result.objects.filter(scope).values_list("id", "entity_id", "scorecard", "digest", "level") if e in in_batch}
    create, moved, kept, changes, keep = [], [], [], [], set()
    stamp = connection.ops.adapt_datetimefield_value(now)  # once: the driver's value for every row
    for card in cards:
        picked = [n for n, r in enumerate(rows)
                  if card.applies(r["kind_key"], r["spec_type"] or "", r["tags"] or [], r["lifecycle"] or "")]
        if not picked:
            continue
        outcomes = compiled[card.name].evaluate([entity_facts[n] for n in picked])
        manual_checks = [c.id for c in card.checks if c.manual]
        for n, outcome in zip(picked, outcomes, strict=True):
            row = rows[n]
            checks = {cid: [o.passed, o.error] for cid, o in outcome.items()}
            for cid in manual_checks:
                checks[cid] = _manual_outcome(manual.get((row["id"], card.name, cid)), now)
            checks = {c.id: checks[c.id] for c in card.checks}  # the definition's order
            level, rank = level_for(card, checks)
            digest = _digest(level, checks, row, card.version)
            key = (row["id"], card.name)
            keep.add(key)
            old = existing.get(key)
            if old is not None and old[1] == digest:
                continue
            values = (level, rank, sum(1 for v in checks.values() if v[0]), len(checks),
                      json.dumps(checks, separators=(",", ":")), row["owner_team_id"], row["visibility"],
                      card.version, digest, stamp)
            if old is None:
                create.append((row["id"], card.name, *values, stamp))
                changes.append((row["id"], card.name, "", level, stamp))
            elif old[2] != level:  # the level moved: level_since starts now
                changes.append((row["id"], card.name, old[2], level, stamp))
                moved.append((*values, stamp, old[0]))
            else:
                kept.append((*values, old[0]))
    gone = [v[0] for key, v in existing.items() if key not in keep]
    _write(create, moved, kept, changes, gone, scope, now)
    stats["entities"] += len(rows)
    stats["written"] += len(create) + len(moved) + len(kept)
    stats["changes"] += len(changes)


COLUMNS = ("level", "rank", "passed", "total", "checks", "owner_team_id", "visibility", "definition_version",
           "digest", "evaluated_at")


def _write(create, moved, kept, changes, gone, scope: Q, now: datetime) -> None:
    """The rows come with their times already in the driver's form (one conversion per batch): new
    results, changed results whose level moved (with their new level_since) and the other changed ones,
    each in id order. On PostgreSQL many rows go in one statement (`insert_values`, `update_values`):
    executemany would send one statement per row, each parsed and planned by the server."""
    with transaction.atomic():
        if gone:
            Result.objects.filter(pk__in=gone).delete()
        insert_values(Result, ["entity_id", "scorecard", *COLUMNS, "level_since"], create)
        update_values(Result, [*COLUMNS, "level_since"], sorted(moved, key=lambda row: row[-1]))  # locks in id order
        update_values(Result, list(COLUMNS), sorted(kept, key=lambda row: row[-1]))
        insert_values(LevelChange, ["entity_id", "scorecard", "from_level", "to_level", "at"], changes)
        # Unchanged results were evaluated too: one statement records when.
        Result.objects.filter(scope).exclude(evaluated_at=now).update(evaluated_at=now)


def rollup_today(*, now: datetime | None = None) -> int:
    """Replace today's per-team, per-domain, per-level counts: the current counts the scorecard pages read
    (a few thousand rows, not 250,000 results) and tomorrow's trend points. With them, per campaign check,
    how many of those entities fail it."""
    from .selectors import counts_by_domain

    now = now or timezone.now()
    fields = ("scorecard", "owner_team_id", "level", "visibility")
    counts = counts_by_domain(Result.objects.all(), fields)
    failing: dict[tuple, dict[str, int]] = defaultdict(dict)
    for card in definitions.load_all():
        for check in card.checks:
            if card.error or not check.deadline:
                continue
            fails = Result.objects.filter(scorecard=card.name).exclude(**{f"checks__{check.id}__0": True})
            for key, n in counts_by_domain(fails, fields).items():
                failing[key][check.id] = n
    with transaction.atomic():
        DailyRollup.objects.filter(day=now.date()).delete()
        DailyRollup.objects.bulk_create([
            DailyRollup(day=now.date(), scorecard=scorecard, owner_team_id=team_id, level=level, visibility=visibility,
                        domain_ref=domain, count=n, failing=failing.get((scorecard, team_id, level, visibility, domain), {}),
                        refreshed_at=now)
            for (scorecard, team_id, level, visibility, domain), n in counts.items()
        ], batch_size=2000)
    return len(counts)


def refresh_soon() -> None:
    """Queue a refresh of today's counts (tasks.refresh_rollup), at most one waiting at a time: the
    evaluations of a burst of catalog changes share it. A broker outage is logged (the next evaluation
    or the nightly pass refreshes)."""
    from django.core.cache import cache

    delay = int(conf.get("ROLLUP_DELAY_SECONDS"))
    if not cache.add("plinth:scorecards:rollup-queued", 1, timeout=delay):
        return
    try:  # by name, as costs queues its imports: tasks.py imports this module
        current_app.send_task("portal.scorecards.tasks.refresh_rollup", countdown=delay + 1)
    except Exception:
        cache.delete("plinth:scorecards:rollup-queued")
        log.exception("could not queue the scorecard rollup refresh; the nightly pass will")


def manual_set(*, actor, entity: Entity, scorecard: str, check_id: str, passed: bool, justification: str,
               expires_at: datetime) -> ManualResult:
    """Record an owner's answer to a manual check (audited), then re-evaluate the entity."""
    permissions.require(actor, permissions.Action.VIEW, entity)
    if not permissions.can(actor, permissions.Action.EDIT, entity):
        raise PermissionDenied("Only the owner team may answer a manual check")
    card = definitions.get(scorecard)
    check = card.check(check_id) if card and not card.error else None
    if check is None or not check.manual or not card.applies(entity.kind_key, entity.spec_type, entity.tags,
                                                             entity.lifecycle):
        raise ValidationError({"check": f"{scorecard}/{check_id} is not a manual check of this entity"})
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError({"justification": "A justification is required"})
    if len(justification) > conf.get("MAX_JUSTIFICATION_CHARS"):
        raise ValidationError({"justification": f"At most {conf.get('MAX_JUSTIFICATION_CHARS')} characters"})
    now = timezone.now()
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future"})
    if expires_at > now + timedelta(days=conf.get("MAX_MANUAL_DAYS")):
        raise ValidationError({"expires_at": f"At most {conf.get('MAX_MANUAL_DAYS')} days ahead"})
    with transaction.atomic():
        before = ManualResult.objects.filter(entity=entity, scorecard=scorecard, check_id=check_id).first()
        row, _ = ManualResult.objects.update_or_create(
            entity=entity, scorecard=scorecard, check_id=check_id,
            defaults={"passed": passed, "justification": justification, "expires_at": expires_at,
                      "set_by": actor, "set_at": now},
        )
        audit_record(
            actor=actor, action="scorecards.manual.set", target=f"{entity.ref}#{scorecard}/{check_id}",
            before=None if before is None else {"passed": before.passed, "expires_at": before.expires_at.isoformat(),
                                                "justification": before.justification},
            after={"passed": passed, "expires_at": expires_at.isoformat(), "justification": justification},
        )
    evaluate_entities(entity_ids=[entity.id])
    return row


def notify_campaigns(*, now: datetime | None = None) -> int:
    """Owners of entities failing a campaign check (one with a deadline not yet passed) get one
    notification per campaign (idempotent by key: the nightly run repeats nothing). Returns how many
    new notifications were written."""
    from portal.accounts.models import Membership
    from portal.governance import notifications

    now = now or timezone.now()
    written = 0
    for card in definitions.load_all():
        if card.error:
            continue
        for check in card.campaigns:
            if check.deadline < now.date():
                continue
            failing: dict[int, int] = defaultdict(int)
            for team_id, checks in (Result.objects.filter(scorecard=card.name, owner_team__isnull=False)
                                    .values_list("owner_team_id", "checks").iterator()):
                if not (checks.get(check.id) or [False])[0]:
                    failing[team_id] += 1
            if not failing:
                continue
            per_user: dict = {}
            for m in Membership.objects.filter(team_id__in=list(failing)).select_related("user"):
                if m.user.is_active:
                    per_user.setdefault(m.user, 0)
                    per_user[m.user] += failing[m.team_id]
            url = reverse("scorecards:campaign", args=[card.name, check.id])
            for user, count in per_user.items():
                _, created = notifications.write(
                    [user], key=f"scorecard-campaign:{card.name}:{check.id}:{check.deadline}",
                    kind="scorecard-campaign", url=url,
                    message=(f"Campaign “{check.title}” ({card.title}) ends {check.deadline}: "
                             f"{count} of your team's entities fail it"),
                )
                written += created
    return written
