"""The writer: stores a plan inside the caller's transaction — the location, its entities, relations,
tags, errors and sources, the facet delta, the audit event and the change signals. Rows are built here
the same way for both engines; how they reach the tables is `catalog.ingest.engines`' part."""

from __future__ import annotations

import json
import operator
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.audit import audit_record
from portal.core.db import DeferredIndexes, analyze_grown, time_ordered_hexes

from .. import facets, signals
from ..descriptors.relations import INVERSE
from ..models import Entity, EntityTag, Location, LocationSource, ProcessingError, Relation
from .engines import engine
from .planner import Plan
from .reader import ROW_KEYS, Candidate

BATCH = 2000
CHUNK = 5000
AUDIT_REF_CAP = 200


def chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def refresh_owner_teams(team: Team) -> int:
    """A team created after its entities were ingested takes ownership of them (and search, facet
    counts and docs learn it, since ownership decides who sees private entities)."""
    orphaned = Entity.objects.filter(owner_ref=f"group:default/{team.name}", owner_team__isnull=True)
    refs = list(orphaned.values_list("ref", flat=True))
    if not refs:
        return 0
    count = Entity.objects.filter(ref__in=refs).update(owner_team=team, updated_at=timezone.now())
    facets.bump()
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=refs, removed=[]))
    return count


def team_ids(candidates: list[Candidate]) -> dict[str, int]:
    """Owner ref -> team id, after creating the teams of the Group entities among `candidates`."""
    for cand in candidates:
        if cand.kind == "Group" and cand.namespace == "default":
            from portal.accounts.services import team_ensure

            profile = (cand.data.get("spec") or {}).get("profile") or {}
            title = cand.data["metadata"].get("title") or profile.get("displayName") or ""
            team = team_ensure(name=cand.name.lower(), title=str(title)[:200])
            refresh_owner_teams(team)
    return {f"group:default/{name}": pk for pk, name in Team.objects.values_list("id", "name")}


def relation_rows(entity_id: int, cand: Candidate) -> list[tuple]:
    """Both directions of each outgoing relation: (origin, source ref, type, target ref)."""
    ref = cand.ref
    return [row for rtype, target in cand.relations
            for row in ((entity_id, ref, rtype, target), (entity_id, target, INVERSE[rtype], ref))]


# Candidate.row columns stored as they are, then the columns an insert adds (see insert_entities).
_ROW_COLUMNS = tuple(key for key in ROW_KEYS if key != "tags")
ENTITY_COLUMNS = ["uid", *_ROW_COLUMNS, "tags", "data", "owner_team_id", "location_id", "orphan", "error_count",
                  "created_at", "updated_at"]
_row_values = operator.itemgetter(*_ROW_COLUMNS)


def _source_type(row: tuple) -> str:
    """A relation row's (source_ref, type) order as one string (refs hold no NUL): sorting 50k rows
    by it is ~3x faster than by the tuple."""
    return row[1] + "\0" + row[2]


def insert_entities(candidates: list[Candidate], location: Location, teams: dict[str, int], now) -> list[tuple[int, Candidate]]:
    """Insert new entities; returns (id, candidate) pairs, without reading them back by ref.

    In name order: all but one of the entity indexes end in name_key, and the table itself is keyed
    by id, so sorted rows with ascending ids append to every B-tree instead of scattering over pages
    (at 250k entities that is most of the insert cost). JSON columns go as their text (SQLite stores
    it; PostgreSQL's COPY parses it), without Django's adapters: one plain tuple per row."""
    if not candidates:
        return []
    ordered = sorted(candidates, key=lambda c: c.row["name_key"])
    when = Entity._meta.get_field("created_at").get_db_prep_save(now, connection)
    loc, uids = location.pk, time_ordered_hexes(len(ordered))
    tags_json: dict[tuple, str] = {}  # a catalog's entities share a few hundred tag lists
    rows = [(uid, *_row_values(row := cand.row),
             tags_json.get(key := tuple(row["tags"])) or tags_json.setdefault(key, json.dumps(row["tags"])),
             cand.data_json, teams.get(row["owner_ref"]), loc, False, 0, when, when)
            for cand, uid in zip(ordered, uids, strict=True)]
    ids = engine().insert_entities(ENTITY_COLUMNS, rows, [c.ref for c in ordered])
    return list(zip(ids, ordered, strict=True))


def write_errors(location: Location, plan: Plan) -> int:
    """The location's errors as of this read; returns how many it has. Those of sources skipped as
    unchanged stay (they were not read again, so this read has none of theirs); every other one goes,
    including those of files that could not be read or are gone, which a read reports afresh each time."""
    kept = plan.read.unchanged_sources
    stale, still = [], 0
    for pk, source in ProcessingError.objects.filter(location=location).values_list("id", "source"):
        if source and source in kept:
            still += 1
        else:
            stale.append(pk)
    for chunk in chunks(stale):
        ProcessingError.objects.filter(pk__in=chunk).delete()
    ProcessingError.objects.bulk_create(
        [ProcessingError(location=location, source=e.source[:2000], line=e.line, field=(e.field or "")[:300],
                         message=e.message) for e in plan.errors],
        batch_size=BATCH,
    )
    return still + len(plan.errors)


def store_sources(location: Location, plan: Plan) -> None:
    existing = {s.source: s for s in LocationSource.objects.filter(location=location)}
    stale = [row.pk for source, row in existing.items() if source not in plan.read.sources]
    for chunk in chunks(stale):
        LocationSource.objects.filter(pk__in=chunk).delete()
    create, update = [], []
    for source, digest in plan.read.sources.items():
        children = plan.read.children.get(source, [])
        if source in existing:
            row = existing[source]
            if row.content_hash != digest or row.children != children:
                row.content_hash, row.children = digest, children
                update.append(row)
        else:
            create.append(LocationSource(location=location, source=source[:2000], content_hash=digest, children=children))
    LocationSource.objects.bulk_create(create, batch_size=BATCH)
    LocationSource.objects.bulk_update(update, ["content_hash", "children"], batch_size=500)


class Writer:
    """Stores a plan inside the caller's transaction: `write` batch by batch as the plan grows
    (streamed registration), then `finish` once the whole location has been read."""

    def __init__(self, plan: Plan, *, actor, orphan_strategy: str):
        self.plan, self.actor, self.orphan_strategy = plan, actor, orphan_strategy
        self.now = timezone.now()
        self.location = plan.location or Location.objects.create(
            type=plan.type, target=plan.target, created_by=actor if actor and actor.is_authenticated else None,
            org_wide=permissions.location_is_org_wide(actor))
        self.teams: dict[str, int] = {}
        self.before: tuple[list, list] = ([], [])  # cube rows of changed or deleted entities, read before the write
        # Cube rows of the written entities, counted batch by batch as written (with each batch's teams:
        # a team created later in the write changes the version, and the cube is then counted instead).
        self.after: tuple[Counter, Counter] = (Counter(), Counter())
        self.written: list[tuple[int, Candidate]] = []
        self.previous: int | None = None  # the catalog version before the first change (facets)
        self.staged: dict = {}  # entities_staged receivers' state for this write
        # Set by a streamed write into a small catalog: the indexes deferred once a batch of at least
        # `bulk_load_rows` new entities comes (see catalog.services._stream).
        self.bulk_load: DeferredIndexes | None = None
        self.bulk_load_rows = 0

    def write(self, added: list[Candidate], changed: list[tuple[int, Candidate]]) -> None:
        """Entities, relations and tags of one batch."""
        if not (added or changed):
            return
        self._first_change()
        if self.bulk_load is not None and len(added) >= self.bulk_load_rows:
            # A full first batch: a large load into a small catalog.
            self.bulk_load.drop()
            self.staged["bulk_load"] = True
        self.teams = team_ids(added + [c for _, c in changed])
        changed_ids = [pk for pk, _ in changed]
        self._remember_old(changed_ids)
        # Entities before their relations and tags: a child row inserted first counts as a deferred
        # foreign-key violation, and while any is pending SQLite checks the child tables on each
        # parent insert.
        new = insert_entities(added, self.location, self.teams, self.now)
        if changed:
            self._update(changed, changed_ids)
        written = new + changed
        self._write_rows(written)
        self.written += written

    def _update(self, changed: list[tuple[int, Candidate]], changed_ids: list[int]) -> None:
        updates = []
        for pk, cand in changed:
            cols = cand.columns()
            updates.append(Entity(pk=pk, location=self.location, owner_team_id=self.teams.get(cols["owner_ref"]),
                                  orphan=False, updated_at=self.now, **cols))
        fields = list(changed[0][1].columns()) + ["location", "owner_team", "orphan", "updated_at"]
        Entity.objects.bulk_update(updates, fields, batch_size=500)
        for chunk in chunks(changed_ids):
            Relation.objects.filter(origin_id__in=chunk).delete()
            EntityTag.objects.filter(entity_id__in=chunk).delete()
            Entity.objects.filter(pk__in=chunk, error_count__gt=0).update(error_count=0)  # new ones start at 0

    def _write_rows(self, written: list[tuple[int, Candidate]]) -> None:
        """The relations and tags of the entities just written, their facet delta, and the staged signal."""
        teams = self.teams
        relations: list[tuple] = []
        tag_rows: list[tuple] = []
        cube_rows: list[tuple] = []  # facets.CUBE_COLUMNS; the tags: TAG_COLUMNS
        cube_tags: list[tuple] = []
        staged: list[tuple] = []
        for pk, cand in written:
            relations += relation_rows(pk, cand)
            cols = cand.row
            team = teams.get(cols["owner_ref"])
            tags = dict.fromkeys(cols["tags"])
            tag_rows += [(pk, tag) for tag in tags]
            cube = (cols["kind_key"], cols["spec_type"], cols["lifecycle"], cols["owner_ref"], cols["namespace"],
                    cols["visibility"], team)
            cube_rows.append(cube)
            cube_tags += [(tag, *cube) for tag in tags]
            staged.append((pk, team, cand))
        relations.sort(key=_source_type)  # the (source_ref, type) index order, as above
        rows = engine()
        rows.load(Relation, ["origin_id", "source_ref", "type", "target_ref"], relations)
        rows.load(EntityTag, ["entity_id", "tag"], tag_rows)
        self.after[0].update(cube_rows)
        self.after[1].update(cube_tags)
        signals.entities_staged.send(sender=Entity, state=self.staged, written=staged)

    def _first_change(self) -> None:
        if self.previous is None:
            self.previous = facets.lock()  # held to the commit: no write can come in between

    def _remember_old(self, entity_ids: list[int]) -> None:
        rows, tags = facets.old_rows(entity_ids)
        self.before[0].extend(rows)
        self.before[1].extend(tags)

    def finish(self) -> Location:
        """Removals, errors, sources, the location's status, the audit event and the change signal."""
        signals.entities_staged.send(sender=Entity, state=self.staged, written=[], done=True)
        # A large write: the receivers after the commit, and the next requests, plan on its statistics.
        # Taken before deferred indexes come back: CREATE INDEX sets a table's row count, which would
        # then make the table look analyzed for its size.
        analyze_grown([m._meta.db_table for m in (Entity, Relation, EntityTag)], len(self.written))
        if self.bulk_load is not None:
            self.bulk_load.restore()
        self.teams = self.teams or team_ids([])
        self._remove()
        self._store_location()
        self._audit()
        plan = self.plan
        changed_refs = [c.ref for c in plan.added] + [c.ref for _, c in plan.changed]
        # Gone from the location: deleted (`removed`), or kept in the catalog as orphans (`orphaned`).
        gone = [ref for _, ref in plan.removed]
        removed_refs, orphaned = ([], gone) if self.orphan_strategy == "keep" else (gone, [])
        # What was written, for receivers that would otherwise read it back (the search index).
        teams = self.teams
        snapshot = {cand.ref: (pk, teams.get(cand.row["owner_ref"]), cand) for pk, cand in self.written}
        transaction.on_commit(lambda: signals.entities_changed.send(
            sender=Entity, changed=changed_refs, removed=removed_refs, orphaned=orphaned, snapshot=snapshot,
            staged=True))
        return self.location

    def _remove(self) -> None:
        plan, now = self.plan, self.now
        removed_ids = [pk for pk, _ in plan.removed]
        if removed_ids:
            self._first_change()
        if self.orphan_strategy != "keep":
            self._remember_old(removed_ids)
        for chunk in chunks(removed_ids):
            if self.orphan_strategy == "keep":
                Entity.objects.filter(pk__in=chunk).update(orphan=True, location=None, updated_at=now)
            else:
                Entity.objects.filter(pk__in=chunk).delete()
        for chunk in chunks([pk for pk, _ in plan.kept_with_errors]):
            Entity.objects.filter(pk__in=chunk).update(error_count=1)

    def _store_location(self) -> None:
        plan, location, now = self.plan, self.location, self.now
        if plan.added or plan.changed or plan.removed:
            # A team created by this write may have taken over other locations' entities (and bumped
            # the version): that change is not in the delta, so the new cube is counted instead.
            followed, current = facets.bump()
            previous = self.previous if followed == self.previous else None
            before, after = self.before, self.after
            transaction.on_commit(lambda: facets.roll_forward(previous, current, before, after))
        errors = write_errors(location, plan)
        store_sources(location, plan)
        location.refreshed_at = now
        location.next_refresh_at = now + timedelta(seconds=settings.PLINTH_CATALOG_REFRESH_SECONDS)
        location.error_count = errors
        location.status = "error" if errors else "ok"
        location.refresh_error = ""
        if plan.read.discovery_state is not None:
            location.discovery_state = plan.read.discovery_state
        location.entity_count = Entity.objects.filter(location=location).count()
        location.save()

    def _audit(self) -> None:
        plan, location = self.plan, self.location
        if plan.added or plan.changed or plan.removed or plan.errors or plan.location is None:
            summary = plan.summary()
            audit_record(
                actor=self.actor,
                action="catalog.location.register" if plan.location is None else "catalog.location.refresh",
                target=f"location:{location.pk}",
                after={
                    "target": location.target,
                    "added": summary["added"][:AUDIT_REF_CAP], "added_count": len(plan.added),
                    "changed": summary["changed"][:AUDIT_REF_CAP], "changed_count": len(plan.changed),
                    "removed": summary["removed"][:AUDIT_REF_CAP], "removed_count": len(plan.removed),
                    "orphan_strategy": self.orphan_strategy if plan.removed else None,
                    "errors": len(plan.errors),
                },
                outcome="success" if not plan.errors else "partial",
            )
