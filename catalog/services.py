"""Writes to the catalog. Every function runs in one transaction and writes its audit event."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import operator
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.audit import audit_record
from portal.core.db import DeferredIndexes, bulk_write_cache, time_ordered_hexes, time_ordered_uuids

from . import facets, mlflow_sync, mlflow_webhooks, selectors, signals, uploads
from .descriptors.errors import DescriptorError
from .descriptors.relations import INVERSE
from .ingestion import (
    ROW_KEYS,
    Candidate,
    Reader,
    ReadResult,
    content_hash,
    dump,
    refuse_unreadable_feast,
    refuse_unreadable_url,
)
from .models import (
    Entity,
    EntityTag,
    Location,
    LocationSource,
    MlflowSyncJob,
    MlflowWebhookDelivery,
    ProcessingError,
    Relation,
    Star,
)

log = logging.getLogger("plinth.catalog")
BATCH = 2000
CHUNK = 5000
AUDIT_REF_CAP = 200


@dataclass
class Plan:
    target: str
    type: str
    location: Location | None
    read: ReadResult
    added: list[Candidate] = field(default_factory=list)
    changed: list[tuple[int, Candidate]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[tuple[int, str]] = field(default_factory=list)  # (entity id, ref)
    kept_with_errors: list[tuple[int, str]] = field(default_factory=list)
    conflicts: list[DescriptorError] = field(default_factory=list)
    refused: list[DescriptorError] = field(default_factory=list)  # not the registrant's to claim
    created: bool = False

    @property
    def errors(self) -> list[DescriptorError]:
        return self.read.errors + self.conflicts + self.refused

    def summary(self) -> dict:
        return {
            "target": self.target,
            "type": self.type,
            "added": sorted(c.ref for c in self.added),
            "changed": sorted(c.ref for _, c in self.changed),
            "removed": sorted(ref for _, ref in self.removed),
            "unchanged": len(self.unchanged),
            "errors": [e.as_dict() for e in self.errors],
        }


class OwnershipRefused(PermissionDenied):
    """A new registration names owners (or organisation kinds) its registrant may not claim: nothing
    is stored, and every refused descriptor is listed."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.errors = plan.refused
        super().__init__(f"Nothing was registered: {len(plan.refused)} descriptor(s) name owners you may not claim. "
                         + " ".join(str(e) for e in plan.refused[:5]))


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Planner:
    """Compares candidates with the catalog, batch by batch as they are read, into `plan`; writes
    nothing."""

    def __init__(self, reader: Reader, location: Location | None, claims: permissions.OwnerClaims):
        self.plan = Plan(target=reader.target, type=reader.kind, location=location, read=reader.result,
                         created=location is None)
        self.claims = claims
        # owner ref -> team id, for the claims check (org-wide reads check nothing: no lookup).
        self.team_of: dict[str, int] = {} if claims.org_wide else {
            f"group:default/{name}": pk for pk, name in Team.objects.values_list("id", "name")}
        self.existing_here: dict[str, tuple[int, str, str]] = {}
        if location is not None:
            for pk, ref, digest, source in Entity.objects.filter(location=location).values_list(
                    "id", "ref", "content_hash", "source"):
                self.existing_here[ref] = (pk, digest, source)

    def take(self, candidates: list[Candidate]) -> tuple[list[Candidate], list[tuple[int, Candidate]]]:
        """Sort candidates into the plan; returns the batch's (added, changed)."""
        plan, location = self.plan, self.plan.location
        added: list[Candidate] = []
        changed: list[tuple[int, Candidate]] = []
        elsewhere: dict[str, tuple[int, int | None, int | None]] = {}
        for pk, ref, loc_id, team_id in _select_by_refs(
                ["id", "ref", "location_id", "owner_team_id"],
                [c.ref for c in candidates if c.ref not in self.existing_here]):
            elsewhere[ref] = (pk, loc_id, team_id)
        claimed_by = {loc.pk: loc.target for loc in Location.objects.filter(
            pk__in={loc_id for _pk, loc_id, _team in elsewhere.values() if loc_id})}
        claims = None if self.claims.org_wide else self.claims
        for cand in candidates:
            ref = cand.ref
            if ref in self.existing_here:
                pk, digest, _ = self.existing_here[ref]
                if digest == cand.content_hash:
                    plan.unchanged.append(ref)
                elif not self._refused(cand, claims):
                    changed.append((pk, cand))
            elif ref in elsewhere:
                pk, loc_id, team_id = elsewhere[ref]
                if loc_id is not None and (location is None or loc_id != location.pk):
                    plan.conflicts.append(DescriptorError(
                        f"Entity {ref} is already registered by location '{claimed_by.get(loc_id, loc_id)}'; "
                        f"rejected from '{plan.target}'.",
                        source=cand.source, line=cand.line, field="metadata.name"))
                elif claims is not None and not claims.may_take_over(team_id):
                    plan.refused.append(DescriptorError(
                        f"Entity {ref} exists already (from MLflow, or orphaned) and belongs to a team in which "
                        "you may not edit; rejected.", source=cand.source, line=cand.line, field="metadata.name"))
                elif not self._refused(cand, claims):  # known only from MLflow, or an orphan: adopted
                    changed.append((pk, cand))
            elif not self._refused(cand, claims):
                added.append(cand)
        plan.added += added
        plan.changed += changed
        return added, changed

    def _refused(self, cand: Candidate, claims: permissions.OwnerClaims | None) -> bool:
        """Whether the registration may not store this descriptor (the refusal joins the plan's errors)."""
        if claims is None:
            return False
        owner = cand.row["owner_ref"]
        reason = claims.refusal(cand.kind_key, owner, self.team_of.get(owner))
        if reason is not None:
            self.plan.refused.append(DescriptorError(
                f"{cand.ref}: {reason}; rejected.", source=cand.source, line=cand.line,
                field="kind" if cand.kind_key in permissions.ORG_KINDS else "spec.owner"))
        return reason is not None

    def finish(self) -> None:
        """What the read no longer has: removed, or kept when its file could not be read."""
        plan, result = self.plan, self.plan.read
        error_sources = {e.source for e in result.errors}
        # Nothing could be read at all (a Feast repository whose configuration or registry is broken names
        # a file its entities do not come from): everything stays, flagged, until a read succeeds.
        unread = bool(result.errors) and not result.sources
        for ref, (pk, _digest, source) in self.existing_here.items():
            if ref in result.candidates or source in result.unchanged_sources:
                if source in result.unchanged_sources and ref not in result.candidates:
                    plan.unchanged.append(ref)
                continue
            if unread or source in error_sources:
                plan.kept_with_errors.append((pk, ref))
            else:
                plan.removed.append((pk, ref))


def location_plan(*, target: str, file_roots: list[str] | None, location: Location | None = None,
                  reader: Reader | None = None, claims: permissions.OwnerClaims | None = None) -> Plan:
    """Read a location and compare it with the catalog. Writes nothing. Descriptors that `claims`
    (by default: anything) do not allow are refused into the plan's errors."""
    reader = reader or _reader(target, file_roots, location)
    reader.read()
    _refuse_aborted(reader, location)
    return _compare(reader, location, claims or permissions.OwnerClaims(org_wide=True))


def _refuse_aborted(reader: Reader, location: Location | None) -> None:
    """A new discovery location whose scan could not run (no such organisation, a rate limit, a host
    that refuses the token) is refused with that message, storing nothing; a registered one keeps its
    entities and shows the error."""
    if location is None and reader.aborted is not None:
        raise DescriptorError(reader.aborted.message, source=reader.target, field="target")


def _compare(reader: Reader, location: Location | None, claims: permissions.OwnerClaims) -> Plan:
    """The plan of what `reader` has read against the catalog as it is now."""
    planner = _Planner(reader, location, claims)
    planner.take(list(reader.result.candidates.values()))
    planner.finish()
    return planner.plan


def _take_turn(location: Location | None) -> None:
    """Two refreshes of one location at once (a beat tick and a redelivered message, or a user's
    Refresh) take turns: the second compares with what the first stored, instead of both writing
    the same change against the old state. Called first in the storing transaction (on SQLite the
    IMMEDIATE transaction already serialises writers)."""
    if location is not None:
        list(Location.objects.select_for_update().filter(pk=location.pk).values_list("pk", flat=True))


def _reader(target: str, file_roots: list[str] | None, location: Location | None) -> Reader:
    known = None
    if location is not None:
        known = {s.source: (s.content_hash, s.children) for s in location.sources.all()}
    return Reader(target, file_roots=file_roots, known=known,
                  discovery_state=location.discovery_state if location is not None else None)


def _team_ids(candidates: list[Candidate]) -> dict[str, int]:
    for cand in candidates:
        if cand.kind == "Group" and cand.namespace == "default":
            from portal.accounts.services import team_ensure

            profile = (cand.data.get("spec") or {}).get("profile") or {}
            title = cand.data["metadata"].get("title") or profile.get("displayName") or ""
            team = team_ensure(name=cand.name.lower(), title=str(title)[:200])
            refresh_owner_teams(team)
    return {f"group:default/{name}": pk for pk, name in Team.objects.values_list("id", "name")}


def _relation_rows(entity_id: int, cand: Candidate) -> list[tuple]:
    """Both directions of each outgoing relation: (origin, source ref, type, target ref)."""
    ref = cand.ref
    return [row for rtype, target in cand.relations
            for row in ((entity_id, ref, rtype, target), (entity_id, target, INVERSE[rtype], ref))]


def _select_by_refs(columns: list[str], refs: list[str]) -> list[tuple]:
    """Entity rows for many refs in one statement with one parameter (an ORM `ref__in` of 250k
    values costs seconds to compile)."""
    if not refs:
        return []
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    table, ref = quote(Entity._meta.db_table), quote("ref")
    if connection.vendor == "postgresql":
        sql, param = f"SELECT {names} FROM {table} WHERE {ref} = ANY(%s)", refs  # noqa: S608
    else:
        sql, param = f"SELECT {names} FROM {table} WHERE {ref} IN (SELECT value FROM json_each(%s))", json.dumps(refs)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [param])
        return cursor.fetchall()


def _bulk_insert(model, columns: list[str], rows: list[tuple]) -> None:
    """executemany straight to the table: at 250k entities the ORM's per-object cost dominates."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 10_000):
            cursor.executemany(sql, rows[start:start + 10_000])


# Candidate.row columns stored as they are, then the columns an insert adds (see _insert_entities).
_ROW_COLUMNS = tuple(key for key in ROW_KEYS if key != "tags")
_ENTITY_COLUMNS = ["uid", *_ROW_COLUMNS, "tags", "data", "owner_team_id", "location_id", "orphan", "error_count",
                   "created_at", "updated_at"]
_row_values = operator.itemgetter(*_ROW_COLUMNS)


def _source_type(row: tuple) -> str:
    """A relation row's (source_ref, type) order as one string (refs hold no NUL): sorting 50k rows
    by it is ~3x faster than by the tuple."""
    return row[1] + "\0" + row[2]


def _insert_entities(candidates: list[Candidate], location: Location, teams: dict[str, int], now) -> list[tuple[int, Candidate]]:
    """Insert new entities; returns (id, candidate) pairs, without reading them back by ref.

    In name order: all but one of the entity indexes end in name_key, and the table itself is keyed
    by id, so sorted rows with ascending ids append to every B-tree instead of scattering over pages
    (at 250k entities that is most of the insert cost). SQLite assigns the ids (a supplied id costs a
    lookup per row): one after the other in insertion order, as this transaction holds the only
    write lock. PostgreSQL: taken from the id sequence first."""
    if not candidates:
        return []
    ordered = sorted(candidates, key=lambda c: c.row["name_key"])
    when = Entity._meta.get_field("created_at").get_db_prep_save(now, connection)
    if connection.vendor == "sqlite":  # JSON columns are plain text there: no adapters, one tuple per row
        loc, uids = location.pk, time_ordered_hexes(len(ordered))
        tags_json: dict[tuple, str] = {}  # a catalog's entities share a few hundred tag lists
        rows = [(uid, *_row_values(row := cand.row),
                 tags_json.get(key := tuple(row["tags"])) or tags_json.setdefault(key, json.dumps(row["tags"])),
                 cand.data_json, teams.get(row["owner_ref"]), loc, False, 0, when, when)
                for cand, uid in zip(ordered, uids, strict=True)]
        _bulk_insert(Entity, _ENTITY_COLUMNS, rows)
        return list(zip(_inserted_ids(ordered), ordered, strict=True))
    ids, uids = _sequence_ids(len(ordered)), time_ordered_uuids(len(ordered))
    fields = {f.attname: f for f in Entity._meta.concrete_fields}
    columns = ["id", *_ENTITY_COLUMNS]
    rows = []
    for pk, cand, uid in zip(ids, ordered, uids, strict=True):
        cols = dict(cand.row)
        cols.update(id=pk, owner_team_id=teams.get(cols["owner_ref"]), location_id=location.pk, orphan=False,
                    error_count=0, created_at=when, updated_at=when,
                    uid=fields["uid"].get_db_prep_save(uid, connection),
                    tags=fields["tags"].get_db_prep_save(cols["tags"], connection),
                    data=fields["data"].get_db_prep_save(cand.data, connection))
        rows.append(tuple(cols[c] for c in columns))
    _bulk_insert(Entity, columns, rows)
    return list(zip(ids, ordered, strict=True))


def _sequence_ids(count: int) -> list[int]:
    table = Entity._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
        return [row[0] for row in cursor.fetchall()]


def _inserted_ids(ordered: list[Candidate]) -> list[int]:
    """The SQLite ids of rows just inserted in this order: consecutive, ending at the last rowid. The
    first and last are checked against their refs; if anything else inserted in between, read back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_insert_rowid()")
        (last,) = cursor.fetchone()
    first = last - len(ordered) + 1
    ends = dict(_select_by_refs(["ref", "id"], [ordered[0].ref, ordered[-1].ref]))
    if ends.get(ordered[0].ref) == first and ends.get(ordered[-1].ref) == last:
        return list(range(first, last + 1))
    log.warning("entity ids were not consecutive; reading %d back", len(ordered))
    by_ref = dict(_select_by_refs(["ref", "id"], [c.ref for c in ordered]))
    return [by_ref[c.ref] for c in ordered]


def _write_errors(location: Location, plan: Plan) -> None:
    reread = [s for s in plan.read.sources if s not in plan.read.unchanged_sources]
    for chunk in _chunks(reread):
        ProcessingError.objects.filter(location=location, source__in=chunk).delete()
    ProcessingError.objects.filter(location=location, source="").delete()
    ProcessingError.objects.bulk_create(
        [ProcessingError(location=location, source=e.source[:2000], line=e.line, field=(e.field or "")[:300],
                         message=e.message) for e in plan.errors],
        batch_size=BATCH,
    )


class _Apply:
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
        self.bulk_load: DeferredIndexes | None = None  # set by a streamed write into a small catalog

    def write(self, added: list[Candidate], changed: list[tuple[int, Candidate]]) -> None:
        """Entities, relations and tags of one batch."""
        if not (added or changed):
            return
        self._first_change()
        if self.bulk_load is not None and len(added) >= STREAM_BATCH:
            # A full first batch: a large load into a small catalog (see _stream).
            self.bulk_load.drop()
            self.staged["bulk_load"] = True
        self.teams = _team_ids(added + [c for _, c in changed])
        changed_ids = [pk for pk, _ in changed]
        self._remember_old(changed_ids)
        # Entities before their relations and tags: a child row inserted first counts as a deferred
        # foreign-key violation, and while any is pending SQLite checks the child tables on each
        # parent insert.
        new = _insert_entities(added, self.location, self.teams, self.now)
        if changed:
            updates = []
            for pk, cand in changed:
                cols = cand.columns()
                updates.append(Entity(pk=pk, location=self.location, owner_team_id=self.teams.get(cols["owner_ref"]),
                                      orphan=False, updated_at=self.now, **cols))
            fields = list(changed[0][1].columns()) + ["location", "owner_team", "orphan", "updated_at"]
            Entity.objects.bulk_update(updates, fields, batch_size=500)
            for chunk in _chunks(changed_ids):
                Relation.objects.filter(origin_id__in=chunk).delete()
                EntityTag.objects.filter(entity_id__in=chunk).delete()
                Entity.objects.filter(pk__in=chunk, error_count__gt=0).update(error_count=0)  # new ones start at 0

        written = new + changed
        teams = self.teams
        relation_rows: list[tuple] = []
        tag_rows: list[tuple] = []
        cube_rows: list[tuple] = []  # facets.CUBE_COLUMNS; the tags: TAG_COLUMNS
        cube_tags: list[tuple] = []
        staged: list[tuple] = []
        for pk, cand in written:
            relation_rows += _relation_rows(pk, cand)
            cols = cand.row
            team = teams.get(cols["owner_ref"])
            tags = dict.fromkeys(cols["tags"])
            tag_rows += [(pk, tag) for tag in tags]
            cube = (cols["kind_key"], cols["spec_type"], cols["lifecycle"], cols["owner_ref"], cols["namespace"],
                    cols["visibility"], team)
            cube_rows.append(cube)
            cube_tags += [(tag, *cube) for tag in tags]
            staged.append((pk, team, cand))
        relation_rows.sort(key=_source_type)  # the (source_ref, type) index order, as above
        _bulk_insert(Relation, ["origin_id", "source_ref", "type", "target_ref"], relation_rows)
        _bulk_insert(EntityTag, ["entity_id", "tag"], tag_rows)
        self.written += written
        self.after[0].update(cube_rows)
        self.after[1].update(cube_tags)
        signals.entities_staged.send(sender=Entity, state=self.staged, written=staged)

    def _first_change(self) -> None:
        if self.previous is None:
            self.previous = facets.counted_version()

    def _remember_old(self, entity_ids: list[int]) -> None:
        rows, tags = facets.old_rows(entity_ids)
        self.before[0].extend(rows)
        self.before[1].extend(tags)

    def finish(self) -> Location:
        """Removals, errors, sources, the location's status, the audit event and the change signal."""
        signals.entities_staged.send(sender=Entity, state=self.staged, written=[], done=True)
        if self.bulk_load is not None:
            self.bulk_load.restore()
        plan, location, now = self.plan, self.location, self.now
        self.teams = self.teams or _team_ids([])
        removed_ids = [pk for pk, _ in plan.removed]
        if removed_ids:
            self._first_change()
        if self.orphan_strategy != "keep":
            self._remember_old(removed_ids)
        for chunk in _chunks(removed_ids):
            if self.orphan_strategy == "keep":
                Entity.objects.filter(pk__in=chunk).update(orphan=True, location=None, updated_at=now)
            else:
                Entity.objects.filter(pk__in=chunk).delete()
        for chunk in _chunks([pk for pk, _ in plan.kept_with_errors]):
            Entity.objects.filter(pk__in=chunk).update(error_count=1)

        if plan.added or plan.changed or plan.removed:
            # A team created by this write may have taken over other locations' entities (and bumped
            # the version): that change is not in the delta, so the new cube is counted instead.
            followed, current = facets.bump()
            previous = self.previous if followed == self.previous else None
            before, after = self.before, self.after
            transaction.on_commit(lambda: facets.roll_forward(previous, current, before, after))
        _write_errors(location, plan)
        _store_sources(location, plan)
        location.refreshed_at = now
        location.next_refresh_at = now + timedelta(seconds=settings.PLINTH_CATALOG_REFRESH_SECONDS)
        location.error_count = len(plan.errors)
        location.status = "error" if plan.errors else "ok"
        location.refresh_error = ""
        if plan.read.discovery_state is not None:
            location.discovery_state = plan.read.discovery_state
        location.entity_count = Entity.objects.filter(location=location).count()
        location.save()

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
        changed_refs = [c.ref for c in plan.added] + [c.ref for _, c in plan.changed]
        removed_refs = [ref for _, ref in plan.removed]
        # What was written, for receivers that would otherwise read it back (the search index).
        teams = self.teams
        snapshot = {cand.ref: (pk, teams.get(cand.row["owner_ref"]), cand) for pk, cand in self.written}
        transaction.on_commit(lambda: signals.entities_changed.send(
            sender=Entity, changed=changed_refs, removed=removed_refs, snapshot=snapshot, staged=True))
        return location


@transaction.atomic
def location_apply(plan: Plan, *, actor, orphan_strategy: str = "delete") -> Location:
    """Store a plan: the location, its entities, relations, tags and errors."""
    apply = _Apply(plan, actor=actor, orphan_strategy=orphan_strategy)
    apply.write(plan.added, plan.changed)
    return apply.finish()


def _store_sources(location: Location, plan: Plan) -> None:
    existing = {s.source: s for s in LocationSource.objects.filter(location=location)}
    stale = [row.pk for source, row in existing.items() if source not in plan.read.sources]
    for chunk in _chunks(stale):
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


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a location is read and stored: its candidates are
    millions of young objects at 250k entities, and each full collection walks them all, for
    nothing (reading makes no reference cycles). Collected normally afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def location_register(*, target: str, actor, file_roots: list[str] | None, dry_run: bool = False) -> Plan:
    """Register a new location (or re-read an existing one with the same target). `actor` None is
    the system (management commands, the demo loader): org-wide. A user needs the edit right in a
    team, may re-read another's location only where `may_refresh_location` allows, and stores only
    descriptors their `owner_claims` allow: a new location with any refused descriptor is not stored
    at all (`OwnershipRefused`); a re-read keeps the stored version of a refused entity."""
    target = target.strip()
    if uploads.is_upload_target(target):
        raise DescriptorError("This folder holds uploaded descriptors: send them again through "
                              "/api/v1/locations/upload (`plinth catalog register`).", field="target")
    existing = Location.objects.filter(target=target).first()
    _check_register(actor, existing, target, dry_run)
    if existing is None:
        refuse_unreadable_url(target)
        refuse_unreadable_feast(target, file_roots)
    plan = _read_and_store(target=target, file_roots=file_roots, location=existing, actor=actor,
                           claims=permissions.owner_claims(actor), store=not dry_run)
    if not dry_run:
        _record_registration(plan, actor)
    return plan


def _record_registration(plan: Plan, actor) -> None:
    """Usage analytics: one event per (owning team, kind) of the entities this registration added,
    with the count as its value (a registration of 250k entities is a handful of events)."""
    if not plan.added or plan.location is None:
        return
    from django.db.models import Count

    from portal.core import usage
    from portal.core.usage import Client, EventType

    rows = Entity.objects.filter(location=plan.location)
    if len(plan.added) <= 1000:
        rows = rows.filter(ref__in=[c.ref for c in plan.added])
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    for group in rows.values("owner_team_id", "kind_key").annotate(n=Count("id")).order_by():
        usage.record(EventType.REGISTRATION, user=user, team=group["owner_team_id"],
                       subject=plan.target[:300], value=group["n"],
                       client=Client.BROWSER if user else Client.SYSTEM, data={"kind": group["kind_key"]})


def _check_register(actor, existing: Location | None, target: str, dry_run: bool) -> None:
    if actor is None:
        return
    if not permissions.may_register_locations(actor):
        raise PermissionDenied("Registering locations needs the member role (or higher) in a team.")
    if existing is not None and not dry_run and not permissions.may_refresh_location(
            actor, existing, selectors.location_owner_team_ids(existing)):
        raise PermissionDenied(f"'{target}' is registered already, and you may not refresh it: its "
                               "registrant, the teams owning its entities and platform admins may.")


def location_upload(*, source: str, files: list[tuple[str, str]], actor, dry_run: bool = False) -> Plan:
    """Register descriptors sent as content (catalog/uploads.py): written to the source's own folder
    and registered like a folder location — the same reader, caps, validation, ownership claims and
    rules as `location_register`, who may register and who may replace an existing upload (a refresh's
    rule) included. Nothing changes, on disk or in the catalog, when the registration fails."""
    checked = uploads.check(source, files)
    folder = uploads.folder_for(source)
    target = str(folder)
    with uploads.locked(folder):
        existing = Location.objects.filter(target=target).first()
        _check_register(actor, existing, target, dry_run)
        staging = uploads.stage(checked)
        try:
            if dry_run:
                plan = location_plan(target=str(staging), file_roots=[str(uploads.root())], location=existing,
                                     claims=permissions.owner_claims(actor))
                plan.target = target
                return plan
            with uploads.swapped_in(staging, folder):
                plan = _read_and_store(target=target, file_roots=[str(uploads.root())], location=existing,
                                       actor=actor, claims=permissions.owner_claims(actor))
            _record_registration(plan, actor)
            return plan
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def location_refresh_failed(*, location_id: int, error: str, final: bool) -> None:
    """Say on the location why its background refresh could not be stored. Nothing of the refresh was
    stored (it is one transaction); the entities stay as they were."""
    then = "; retried automatically" if not final else "; retried at the next scheduled refresh"
    Location.objects.filter(pk=location_id).update(
        refresh_error=f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC: {error[:900]}{then}"
    )


def location_refresh(*, location: Location, actor=None) -> Plan:
    """Read a location again, with its registrant's claims (whoever asks). `actor` None: the system
    (the scheduled refresh, management commands)."""
    if actor is not None and not permissions.may_refresh_location(
            actor, location, selectors.location_owner_team_ids(location)):
        raise PermissionDenied("Only the registrant, members of the teams owning its entities and platform admins "
                               "may refresh this location.")
    return _read_and_store(target=location.target, file_roots=None, location=location, actor=actor,
                           claims=_registrant_claims(location))


def _registrant_claims(location: Location) -> permissions.OwnerClaims:
    if location.org_wide:
        return permissions.OwnerClaims(org_wide=True)
    if location.created_by_id is None:  # the registrant's account was deleted: nothing may change
        return permissions.OwnerClaims(org_wide=False)
    return permissions.owner_claims(location.created_by)


def _read_and_store(*, target: str, file_roots, location: Location | None, actor,
                    claims: permissions.OwnerClaims, store: bool = True) -> Plan:
    with _gc_paused():
        reader = _reader(target, file_roots, location)
        if store and reader.start_processes():
            try:
                return _stream(reader, location, actor, claims)
            finally:
                reader.stop_processes()
        if not store:
            return location_plan(target=target, file_roots=file_roots, location=location, reader=reader,
                                 claims=claims)
        reader.read()  # outside the transaction: reading files or URLs may be slow
        _refuse_aborted(reader, location)
        with bulk_write_cache(len(reader.result.candidates)), transaction.atomic():
            _take_turn(location)
            plan = _compare(reader, location, claims)
            if location is None and plan.refused:
                raise OwnershipRefused(plan)
            plan.location = location_apply(plan, actor=actor, orphan_strategy=settings.PLINTH_CATALOG_ORPHAN_STRATEGY)
    return plan


STREAM_BATCH = 10_000  # candidates per write while a location is still being read
# A streamed registration into a catalog of fewer entities than this defers these tables' secondary
# indexes once its first batch is full (see portal.core.db.DeferredIndexes): recreating them then
# costs little even if the load turns out small. The owner index stays: a Group read during the
# load looks up the entities it owns (refresh_owner_teams).
BULK_LOAD_BELOW = 20_000
BULK_LOAD_TABLES = [Entity._meta.db_table, Relation._meta.db_table, EntityTag._meta.db_table]
BULK_LOAD_KEEP = ("entity_owner_name",)


def _stream(reader: Reader, location: Location | None, actor, claims: permissions.OwnerClaims) -> Plan:
    """Read and store at once: a location read by several processes is written batch by batch while
    they go on reading, in one transaction (a quarter-million entities: the writes overlap the reads
    instead of following them). Forked before the transaction opens (see `Reader.start_processes`)."""
    # The size is known only once read; streaming means many files: the large-write cache.
    with bulk_write_cache(STREAM_BATCH, threshold=0), transaction.atomic():
        _take_turn(location)
        planner = _Planner(reader, location, claims)
        plan = planner.plan
        apply = _Apply(plan, actor=actor, orphan_strategy=settings.PLINTH_CATALOG_ORPHAN_STRATEGY)
        if Entity.objects.count() < BULK_LOAD_BELOW:
            apply.bulk_load = DeferredIndexes(BULK_LOAD_TABLES, keep=BULK_LOAD_KEEP)
        reader.read(on_candidates=lambda batch: apply.write(*planner.take(batch)), batch=STREAM_BATCH)
        planner.finish()
        if location is None and plan.refused:
            raise OwnershipRefused(plan)  # rolls the streamed batches back
        plan.location = apply.finish()
    return plan


@transaction.atomic
def location_unregister(*, location: Location, actor) -> list[str]:
    """Delete a location and its entities. `actor` None: the system."""
    if actor is not None and not permissions.may_unregister_location(
            actor, location, selectors.location_owner_team_ids(location)):
        raise PermissionDenied("Only the registrant, maintainers of every team owning its entities and platform "
                               "admins may unregister this location.")
    ids_refs = list(Entity.objects.filter(location=location).values_list("id", "ref"))
    refs = [ref for _, ref in ids_refs]
    target, pk = location.target, location.pk
    before = facets.old_rows([i for i, _ in ids_refs])
    Entity.objects.filter(location=location).delete()
    location.delete()
    previous, current = facets.bump()
    transaction.on_commit(lambda: facets.roll_forward(previous, current, before, ([], [])))
    if uploads.is_upload_target(target):
        transaction.on_commit(lambda: uploads.remove(target))
    audit_record(actor=actor, action="catalog.location.unregister", target=f"location:{pk}",
                 before={"target": target, "entities": refs[:AUDIT_REF_CAP], "entity_count": len(refs)})
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=[], removed=refs))
    return refs


@transaction.atomic
def entity_star(*, user, entity: Entity, starred: bool) -> bool:
    if starred:
        Star.objects.get_or_create(user=user, entity=entity)
    else:
        Star.objects.filter(user=user, entity=entity).delete()
    return starred


def refresh_owner_teams(team: Team) -> int:
    """A team created after its entities were ingested takes ownership of them (and search, facet
    counts and docs learn it, since ownership decides who sees private entities)."""
    orphaned = Entity.objects.filter(owner_ref=f"group:default/{team.name}", owner_team__isnull=True)
    refs = list(orphaned.values_list("ref", flat=True))
    if not refs:
        return 0
    count = Entity.objects.filter(ref__in=refs).update(owner_team=team)
    facets.bump()
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=refs, removed=[]))
    return count


# -- MLflow: "Sync now" and webhook deliveries --------------------------------------------------

# A job queued or running for longer than this is taken as lost (its worker died): a new one may start.
SYNC_JOB_LEASE = timedelta(minutes=10)


@transaction.atomic
def mlflow_sync_request(*, entity: Entity, actor) -> MlflowSyncJob:
    """Queue a targeted MLflow sync of one model. A second press while one runs returns that one."""
    if not permissions.may_sync_mlflow_model(actor, entity):
        raise PermissionDenied("Only the owning team's members and platform admins may sync this model.")
    active = (MlflowSyncJob.objects.select_for_update()
              .filter(entity=entity, state__in=[MlflowSyncJob.State.QUEUED, MlflowSyncJob.State.RUNNING],
                      created_at__gte=timezone.now() - SYNC_JOB_LEASE)
              .order_by("-pk").first())
    if active is not None:
        return active
    job = MlflowSyncJob.objects.create(entity=entity, requested_by=actor)
    audit_record(actor=actor, action="catalog.mlflow.sync_requested", target=entity.ref, after={"job": job.pk})
    transaction.on_commit(lambda: _queue("catalog.tasks.sync_mlflow_job", [job.pk]))
    return job


def mlflow_sync_job_start(*, job_id: int) -> MlflowSyncJob | None:
    """Claim a queued job (compare-and-set: a redelivered task does not run it twice)."""
    claimed = MlflowSyncJob.objects.filter(pk=job_id, state=MlflowSyncJob.State.QUEUED).update(
        state=MlflowSyncJob.State.RUNNING)
    return MlflowSyncJob.objects.select_related("entity").get(pk=job_id) if claimed else None


def mlflow_sync_job_finish(*, job_id: int, versions: int = 0, error: str = "") -> None:
    MlflowSyncJob.objects.filter(pk=job_id).update(
        state=MlflowSyncJob.State.FAILED if error else MlflowSyncJob.State.DONE,
        error=error[:2000], versions=versions, finished_at=timezone.now())


@transaction.atomic
def mlflow_webhook_accept(*, delivery: mlflow_webhooks.Delivery) -> None:
    """Record a verified delivery and queue a sync of its model. Refusals change nothing: an unknown
    model (400) and a replayed delivery id (401) raise before anything is written."""
    if (delivery.event != mlflow_webhooks.CREATES_MODEL
            and delivery.model.lower() not in mlflow_sync.known_model_names()):
        raise mlflow_webhooks.Refused(400, f"registered model {delivery.model[:100]!r} is not in the catalog")
    _, inserted = MlflowWebhookDelivery.objects.get_or_create(
        delivery_id=delivery.delivery_id, defaults={"event": delivery.event, "model_name": delivery.model})
    if not inserted:
        raise mlflow_webhooks.Refused(401, f"delivery {delivery.delivery_id[:100]!r} was already received: a replay")
    # Ids older than the timestamp window cannot come back (their timestamp is refused first).
    window = timedelta(seconds=2 * settings.PLINTH_MLFLOW_WEBHOOK_TOLERANCE_SECONDS)
    MlflowWebhookDelivery.objects.filter(received_at__lt=timezone.now() - window).delete()
    name = delivery.model
    transaction.on_commit(lambda: _queue("catalog.tasks.sync_mlflow", [], {"names": [name]}))


def _queue(task: str, args: list, kwargs: dict | None = None) -> None:
    from celery import current_app

    try:
        current_app.send_task(task, args=args, kwargs=kwargs or {})
    except Exception:  # broker down: the scheduled sync catches up; the write already committed
        log.exception("could not queue %s", task)


# -- observed entities (known from what ran, e.g. OpenLineage events) ------------------------------

OBSERVED_SOURCE = "observed"
OBSERVED_ANNOTATION = "plinth.dev/observed-by"
OBSERVED_KINDS = {"dataset": "Dataset", "pipeline": "Pipeline"}


@dataclass(frozen=True)
class Observed:
    """An entity the catalog learns about from what ran rather than from a descriptor. `key` is the
    caller's own identity for it (returned with the entity id); `name` a valid entity name."""

    key: str
    kind_key: str  # dataset | pipeline
    name: str
    title: str
    spec_type: str
    annotations: dict[str, str]
    owner_team: Team | None = None
    description: str = ""


_OBSERVED_COLUMNS = ["uid", "ref", "kind", "kind_key", "namespace", "name", "name_key", "api_version", "title",
                     "description", "spec_type", "lifecycle", "owner_ref", "owner_team_id", "system_ref", "visibility",
                     "tags", "data", "source", "content_hash", "orphan", "error_count", "created_at", "updated_at"]


def observed_entities_create(*, items: list[Observed], observer: str, actor=None) -> dict[str, int]:
    """Create entities nobody has described yet (kind Dataset or Pipeline, no location, lifecycle
    `observed`, unowned unless a team is named), inside the caller's transaction: they are indexed for
    search, counted in the facets and filtered by visibility like every other entity. An entity whose
    ref exists already is linked, not changed. Returns {item key: entity id}; one audit event."""
    if not items:
        return {}
    now = timezone.now()
    # In ref order: concurrent observers inserting the same new refs wait for each other, never deadlock.
    by_ref = dict(sorted(((f"{item.kind_key}:default/{item.name}".lower(), item) for item in items),
                         key=lambda pair: pair[0]))
    existing = dict(_select_by_refs(["ref", "id"], list(by_ref)))
    # Rows as the database takes them, written with executemany (an observer sends thousands a batch:
    # Entity instances and bulk_create's statement assembly cost more than the insert).
    fields = {f.attname: f for f in Entity._meta.concrete_fields}
    when = fields["created_at"].get_db_prep_save(now, connection)
    tags = ["observed", observer]
    tags_db, visibility = fields["tags"].get_db_prep_save(tags, connection), fields["visibility"].get_default()
    refs, rows, cube_rows, cube_tags = [], [], [], []
    written: dict[str, tuple] = {}
    # Time-ordered uids (appended to the unique index, not scattered over it) made in one go, and the
    # JSON text written once for the column and its hash: per-value field preparation cost more than
    # the insert (docs/lineage.md, Performance). SQLite stores the text as a registration does.
    native_uuid, text_json = connection.features.has_native_uuid_field, connection.vendor == "sqlite"
    uids = iter((time_ordered_uuids if native_uuid else time_ordered_hexes)(len(by_ref) - len(existing)))
    for ref, item in by_ref.items():
        if ref in existing:
            continue
        owner = f"group:default/{item.owner_team.name}" if item.owner_team else ""
        data = {"apiVersion": "plinth.dev/v1alpha1", "kind": OBSERVED_KINDS[item.kind_key],
                "metadata": {"name": item.name, "namespace": "default", "title": item.title[:255],
                             "description": item.description[:2000],
                             "annotations": {**item.annotations, OBSERVED_ANNOTATION: observer}, "tags": tags},
                "spec": {"type": item.spec_type, "lifecycle": "observed", "owner": owner}}
        refs.append(ref)
        team_id = item.owner_team.pk if item.owner_team else None
        text = dump(data)
        digest = hashlib.sha256(text.encode()).hexdigest()  # content_hash(data)
        # What the receivers would read back (search documents, docs to build), handed to them instead.
        written[ref] = (team_id, Candidate(ref, OBSERVED_KINDS[item.kind_key], "default", item.name, OBSERVED_SOURCE,
                                           0, digest, [], text, _data=data))
        rows.append((next(uids), ref,
                     OBSERVED_KINDS[item.kind_key], item.kind_key, "default", item.name, item.name.lower(),
                     data["apiVersion"], item.title[:255], item.description[:2000], item.spec_type, "observed", owner,
                     team_id, "", visibility, tags_db,
                     text if text_json else fields["data"].get_db_prep_save(data, connection), OBSERVED_SOURCE,
                     digest, False, 0, when, when))
        cube = (item.kind_key, item.spec_type, "observed", owner, "default", "internal",
                item.owner_team.pk if item.owner_team else None)
        cube_rows.append(cube)
        cube_tags += [(tag, *cube) for tag in tags]
    if rows:
        _bulk_insert(Entity, _OBSERVED_COLUMNS, rows)
        created = dict(_select_by_refs(["ref", "id"], refs))
        _bulk_insert(EntityTag, ["entity_id", "tag"], [(created[ref], tag) for ref in refs for tag in tags])
        existing.update(created)
        previous, current = facets.bump()
        transaction.on_commit(lambda: facets.roll_forward(previous, current, ([], []), (cube_rows, cube_tags)))
        audit_record(actor=actor, action="catalog.entity.observe", target=f"observed:{observer}",
                     after={"refs": refs[:AUDIT_REF_CAP], "count": len(refs)})
        snapshot = {ref: (created[ref], team_id, cand) for ref, (team_id, cand) in written.items()}
        # Indexed for search inside this transaction (entities_staged, as a registration does): an
        # observed entity is findable as soon as the batch that created it is visible, and the ingest
        # takes the write lock once per batch instead of twice (docs/lineage.md, Performance).
        staged: dict = {}
        signals.entities_staged.send(sender=Entity, state=staged, written=list(snapshot.values()))
        signals.entities_staged.send(sender=Entity, state=staged, written=[], done=True)
        transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=refs, removed=[],
                                                                    snapshot=snapshot, staged=True))
    return {item.key: existing[ref] for ref, item in by_ref.items()}


@transaction.atomic
def entity_claim(*, entity: Entity, team: Team, actor) -> Entity:
    """Give an unowned entity that no descriptor defines (observed, or known from MLflow only) an
    owner team. Platform admins only (`permissions.may_claim_unowned`); audited."""
    if not permissions.may_claim_unowned(actor):
        raise PermissionDenied("Only platform admins may assign owners to unowned assets.")
    entity = Entity.objects.select_for_update().get(pk=entity.pk)
    if entity.location_id is not None or entity.owner_team_id is not None:
        raise DescriptorError(f"{entity.ref} is not unowned (it has an owner or a descriptor that names one).",
                              field="entity")
    before = facets.old_rows([entity.pk])
    owner = f"group:default/{team.name}"
    data = dict(entity.data)
    data["spec"] = {**(data.get("spec") or {}), "owner": owner}
    Entity.objects.filter(pk=entity.pk).update(owner_team=team, owner_ref=owner, data=data,
                                               content_hash=content_hash(data), updated_at=timezone.now())
    previous, current = facets.bump()
    after = facets.old_rows([entity.pk])
    transaction.on_commit(lambda: facets.roll_forward(previous, current, before, after))
    audit_record(actor=actor, action="catalog.entity.claim", target=entity.ref,
                 before={"owner": ""}, after={"owner": owner})
    ref = entity.ref
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=[ref], removed=[]))
    entity.refresh_from_db()
    return entity


def observed_entities_remove(*, entity_ids: list[int], reason: str, actor=None) -> list[str]:
    """Delete observed entities (only those: no location, source `observed`) that a declared entity has
    superseded, inside the caller's transaction; search, facets and the audit trail follow."""
    rows = list(Entity.objects.filter(pk__in=entity_ids, source=OBSERVED_SOURCE, location__isnull=True)
                .values_list("id", "ref"))
    if not rows:
        return []
    ids, refs = [pk for pk, _ in rows], [ref for _, ref in rows]
    before = facets.old_rows(ids)
    Entity.objects.filter(pk__in=ids).delete()
    previous, current = facets.bump()
    transaction.on_commit(lambda: facets.roll_forward(previous, current, before, ([], [])))
    audit_record(actor=actor, action="catalog.entity.observed_removed", target=refs[0] if len(refs) == 1 else
                 f"observed:{len(refs)}", before={"refs": refs[:AUDIT_REF_CAP], "reason": reason})
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=[], removed=refs))
    return refs
# -- entities the portal writes itself (no location) ----------------------------------------------


@transaction.atomic
def entity_put_generated(*, data: dict, source: str, actor=None, actor_label: str = "system") -> Entity:
    """Create or update one entity from a descriptor the portal itself composes (a Deployment reported
    by a CD pipeline or derived from an MLflow alias). Validated exactly like a descriptor read from a
    file (DescriptorError with the field path otherwise); relations, tags, the facet cube, search and
    visibility follow as for a registration. An entity of the same ref that a location defines is
    refused: a descriptor in a repository is not overwritten by an event."""
    from .descriptors.loader import Document
    from .ingestion import build_candidate

    candidate, errors = build_candidate(Document(data=data, source=source, line=0, index=0))
    if candidate is None:
        raise errors[0]
    existing = Entity.objects.select_for_update().filter(ref=candidate.ref).first()
    if existing is not None and existing.location_id is not None:
        raise DescriptorError(f"{candidate.ref} is defined by a registered location; its descriptor wins",
                              field="metadata.name")
    if existing is not None and existing.content_hash == candidate.content_hash:
        return existing
    columns = candidate.columns()
    owner_ref = columns["owner_ref"]
    team_id = (Team.objects.filter(name=owner_ref.removeprefix("group:default/")).values_list("pk", flat=True).first()
               if owner_ref.startswith("group:default/") else None)
    before = facets.old_rows([existing.pk]) if existing is not None else ([], [])
    if existing is None:
        entity = Entity.objects.create(**columns, owner_team_id=team_id)
    else:
        for key, value in columns.items():
            setattr(existing, key, value)
        existing.owner_team_id = team_id
        existing.save()
        entity = existing
    Relation.objects.filter(origin=entity).delete()
    Relation.objects.bulk_create(Relation(origin=entity, source_ref=src, type=rtype, target_ref=dst)
                                 for _, src, rtype, dst in _relation_rows(entity.pk, candidate))
    EntityTag.objects.filter(entity=entity).delete()
    EntityTag.objects.bulk_create(EntityTag(entity=entity, tag=t) for t in dict.fromkeys(columns["tags"]))
    previous, current = facets.bump()
    after = facets.old_rows([entity.pk])
    transaction.on_commit(lambda: facets.roll_forward(previous, current, before, after))
    audit_record(actor=actor, actor_label=actor_label,
                 action="catalog.entity.create" if existing is None else "catalog.entity.update",
                 target=entity.ref, after={"source": source, "content_hash": entity.content_hash})
    ref = entity.ref
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=[ref], removed=[]))
    return entity


@transaction.atomic
def entities_delete_generated(*, refs: list[str], source_prefix: str, actor=None, actor_label: str = "system") -> list[str]:
    """Delete entities the portal wrote itself (`source` starting with `source_prefix`, no location),
    e.g. the Deployments of a model that was unregistered. Entities a location defines are never touched."""
    rows = list(Entity.objects.filter(ref__in=refs, location__isnull=True, source__startswith=source_prefix)
                .values_list("id", "ref"))
    if not rows:
        return []
    before = facets.old_rows([pk for pk, _ in rows])
    Entity.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
    previous, current = facets.bump()
    transaction.on_commit(lambda: facets.roll_forward(previous, current, before, ([], [])))
    removed = [ref for _, ref in rows]
    for ref in removed:
        audit_record(actor=actor, actor_label=actor_label, action="catalog.entity.delete", target=ref,
                     after={"source": source_prefix})
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=[], removed=removed))
    return removed
