"""Writes to the catalog. Every function runs in one transaction and writes its audit event."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.audit import audit_record
from portal.core.db import (
    DeferredIndexes,
    bulk_write_cache,
    time_ordered_hexes,
    values_in,
)

from . import discovery, facets, mlflow_sync, mlflow_webhooks, selectors, signals, uploads
from .descriptors.errors import DescriptorError
from .ingest.engines import engine
from .ingest.planner import OwnershipRefused, Plan, Planner, compare, refuse_aborted, unreadable
from .ingest.reader import (
    Candidate,
    Reader,
    canonical_target,
    content_hash,
    dump,
    refuse_unreadable_feast,
    refuse_unreadable_url,
)
from .ingest.writer import AUDIT_REF_CAP, Writer, refresh_owner_teams, relation_rows
from .models import (
    Entity,
    EntityTag,
    Location,
    MlflowSyncJob,
    MlflowWebhookDelivery,
    Relation,
    ScanFile,
    Star,
    UploadBundle,
)

__all__ = ["OwnershipRefused", "Plan", "refresh_owner_teams"]  # the write path's names callers take from here

log = logging.getLogger("plinth.catalog")


def location_plan(*, target: str, file_roots: list[str] | None, location: Location | None = None,
                  reader: Reader | None = None, claims: permissions.OwnerClaims | None = None,
                  viewer=None) -> Plan:
    """Read a location and compare it with the catalog. Writes nothing. Descriptors that `claims`
    (by default: anything) do not allow are refused into the plan's errors; `viewer` (by default: one
    who sees everything) is whose sight decides what another team's private entity is to the read."""
    reader = reader or _reader(target, file_roots, location)
    reader.read()
    _keep_scan_files(reader)  # a preview: the registration that follows takes the files from here
    refuse_aborted(reader, location)
    return compare(reader, location, claims or permissions.OwnerClaims(org_wide=True), viewer)


def _take_turn(location: Location | None) -> None:
    """Two refreshes of one location at once (a beat tick and a redelivered message, or a user's
    Refresh) take turns: the second compares with what the first stored, instead of both writing
    the same change against the old state. Called first in the storing transaction (on SQLite the
    IMMEDIATE transaction already serialises writers)."""
    if location is not None:
        list(Location.objects.select_for_update().filter(pk=location.pk).values_list("pk", flat=True))


def _reader(target: str, file_roots: list[str] | None, location: Location | None,
            upload_dir: str | None = None) -> Reader:
    """`upload_dir`: the files of an upload being registered (else an upload location is read from this
    node's copy of its stored files, made if needed)."""
    known = None
    if location is not None and upload_dir is None:
        # Skip-if-unchanged compares each descriptor's bytes only; an upload's new files are read whole
        # (a changed README that a descriptor's $text names counts).
        known = {s.source: (s.content_hash, s.children) for s in location.sources.all()}
    if upload_dir is None and target.strip().startswith(uploads.PREFIX):
        upload_dir = uploads.local_path(uploads.folder_target(target))
    return Reader(target, file_roots=file_roots, known=known,
                  discovery_state=location.discovery_state if location is not None else None, upload_dir=upload_dir,
                  kept=_scan_files(target))


SCAN_FILE_DAYS = 7  # a stopped scan's files are kept this long for the next scan of the target


def _scan_files(target: str) -> dict[str, tuple[str, bytes | None]] | None:
    """What stopped scans of a discovery target fetched (catalog.models.ScanFile), for the next scan."""
    if discovery.location_type(target) is None:
        return None
    fresh = ScanFile.objects.filter(target=target.strip(), fetched_at__gte=timezone.now() - timedelta(days=SCAN_FILE_DAYS))
    return {source: (version, None if body is None else bytes(body))
            for source, version, body in fresh.values_list("source", "version", "body")}


def scan_files_prune(now=None) -> int:
    """Delete kept scan files older than SCAN_FILE_DAYS, whatever their target: a target that is never
    scanned again (its location unregistered, a preview never confirmed) keeps no repository bytes
    beyond the days a next scan could use them. On the beat (catalog.tasks.prune_scan_files)."""
    cutoff = (now or timezone.now()) - timedelta(days=SCAN_FILE_DAYS)
    return ScanFile.objects.filter(fetched_at__lt=cutoff).delete()[0]


def _keep_scan_files(reader: Reader) -> None:
    """Keep the files a discovery scan fetched when nothing of it is stored (the scan stopped at a rate
    limit, or it was a preview), so the next scan of the target asks the code host only for the rest:
    a first scan larger than the hourly request budget completes over several refreshes. Best effort:
    a failure here costs the next scan its requests, never this read."""
    if reader.kind not in discovery.PREFIXES or not reader.fetched:
        return
    now = timezone.now()
    try:
        with transaction.atomic():
            scan_files_prune(now)  # also hourly on the beat, for targets never scanned again
            ScanFile.objects.filter(target=reader.target, source__in=values_in(list(reader.fetched), text=True)).delete()
            ScanFile.objects.bulk_create([ScanFile(target=reader.target, source=source, version=version, body=body,
                                                   fetched_at=now)
                                          for source, (version, body) in reader.fetched.items()],
                                         batch_size=500, ignore_conflicts=True)
    except DatabaseError:
        log.exception("could not keep %d files of a stopped scan of %s", len(reader.fetched), reader.target)


def _forget_scan_files(reader: Reader) -> None:
    """A complete scan was stored: the catalog (and the location's discovery_state) holds what it read."""
    if reader.kind in discovery.PREFIXES and reader.aborted is None:
        ScanFile.objects.filter(target=reader.target).delete()


@transaction.atomic
def location_apply(plan: Plan, *, actor, orphan_strategy: str = "delete") -> Location:
    """Store a plan: the location, its entities, relations, tags and errors."""
    writer = Writer(plan, actor=actor, orphan_strategy=orphan_strategy)
    writer.write(plan.added, plan.changed)
    return writer.finish()


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
    existing = _registered_as(target, file_roots)
    _check_register(actor, existing, target)
    if existing is None:
        refuse_unreadable_url(target)
        refuse_unreadable_feast(target, file_roots)
    try:
        plan = _read_and_store(target=target, file_roots=file_roots, location=existing, actor=actor,
                               claims=permissions.owner_claims(actor), store=not dry_run, viewer=actor)
    except IntegrityError:
        # Another request registered the same target since it was looked up (the location's target
        # is unique): this one reads it again, as a registration of an existing target would.
        if existing is not None or (existing := _registered_as(target, file_roots)) is None:
            raise
        _check_register(actor, existing, target)
        plan = _read_and_store(target=target, file_roots=file_roots, location=existing, actor=actor,
                               claims=permissions.owner_claims(actor), store=not dry_run, viewer=actor)
    except OwnershipRefused as exc:
        raise OwnershipRefused(exc.plan.visible_to(actor)) from None
    if not dry_run:
        _record_registration(plan, actor)
    return plan.visible_to(actor)


def _registered_as(target: str, file_roots: list[str] | None) -> Location | None:
    """The location registered for `target` however it is spelt: the reader stores a path as its real
    path, so `/srv/repo/` or `/srv/./repo` is the location `/srv/repo` (another spelling was taken for a
    new target, skipped the refresh rule on a dry run and failed on the unique target when stored). A
    target the reader refuses is looked up as given (the refusal comes from the read)."""
    try:
        canonical = canonical_target(target, file_roots)
    except (DescriptorError, ValueError):  # ValueError: a malformed URL (`http://[::1`), refused by the read
        canonical = target
    found = {loc.target: loc for loc in Location.objects.filter(target__in={target, canonical})}
    return found.get(canonical) or found.get(target)


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


def _check_register(actor, existing: Location | None, target: str) -> None:
    """Who may register `target`. A dry run is held to the same rule: its plan is diffed against the
    existing location, so it would list the entities of a location the actor may not refresh."""
    if actor is None:
        return
    if not permissions.may_register_locations(actor):
        raise PermissionDenied("Registering locations needs the member role (or higher) in a team.")
    if existing is not None and not permissions.may_refresh_location(
            actor, existing, selectors.location_owner_team_ids(existing)):
        raise PermissionDenied(f"'{target}' is registered already, and you may not refresh it: its "
                               "registrant, the teams owning its entities and platform admins may.")


def location_upload(*, source: str, files: list[tuple[str, str | bytes]], actor, dry_run: bool = False,
                    entry: str | None = None) -> Plan:
    """Register descriptors sent as content (catalog/uploads.py): a location `upload:<folder>` read like
    a folder location — the same reader, caps, validation, ownership claims and rules as
    `location_register`, who may register and who may replace an existing upload (a refresh's rule)
    included. The files are stored in the database in the registration's transaction (every node reads
    them from there) and copied into this node's folder. Nothing changes, in the database or on disk,
    when the registration fails.

    `entry`: one of the files is the location (`upload:<folder>/<entry>`, read like a file location:
    that descriptor and what it refers to), not every catalog-info.yaml of the folder."""
    checked = uploads.check(source, files, entry)
    folder = uploads.folder_for(source)
    base = uploads.target_for(source)
    target = base + (f"/{entry}" if entry else "")
    other = (Location.objects.filter(Q(target=base) | Q(target__startswith=base + "/")).exclude(target=target)
             .values_list("pk", "target").first())
    if other is not None:  # one location per source: its stored files are the folder's
        # Named to whoever may see that location; to anyone else it is taken, nothing more (its target
        # names a file of another team's private repository).
        named = actor is None or selectors.location_for(actor, other[0]) is not None
        raise ValidationError({"source": [
            (f"This source is registered as another location ({other[1][:300]}); " if named else
             "This source is registered already, as another location; ")
            + "unregister that one first."]})
    blob, digest = uploads.pack(checked)
    store_files = functools.partial(uploads.save, source=source, blob=blob, digest=digest)
    with uploads.locked(folder):  # this node's copy; other nodes take turns in the database
        for attempt in (1, 2):
            existing = Location.objects.filter(target=target).first()
            _check_register(actor, existing, target)
            staging = None
            try:
                staging = uploads.stage(checked)
                if dry_run:
                    reader = _reader(target, None, existing, upload_dir=str(staging))
                    plan = location_plan(target=target, file_roots=None, location=existing, reader=reader,
                                         claims=permissions.owner_claims(actor), viewer=actor)
                    return plan.visible_to(actor)
                with uploads.swapped_in(staging, folder, digest):
                    plan = _read_and_store(target=target, file_roots=None, location=existing, actor=actor,
                                           claims=permissions.owner_claims(actor), upload_dir=str(folder),
                                           also=store_files, viewer=actor)
                _record_registration(plan, actor)
                return plan.visible_to(actor)
            except OwnershipRefused as exc:
                raise OwnershipRefused(exc.plan.visible_to(actor)) from None
            except IntegrityError:
                if existing is not None or attempt == 2:
                    raise
                # Another node registered the same source since it was looked up: this upload now
                # replaces that one, under the replacing rules (checked again above).
            finally:
                if staging is not None:
                    shutil.rmtree(staging, ignore_errors=True)
    raise AssertionError("unreachable")


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
    plan = _read_and_store(target=location.target, file_roots=None, location=location, actor=actor,
                           claims=_registrant_claims(location), unreadable_kept=True, viewer=_registrant(location))
    return plan.visible_to(actor)


def _registrant_claims(location: Location) -> permissions.OwnerClaims:
    if location.org_wide:
        return permissions.OwnerClaims(org_wide=True)
    if location.created_by_id is None:  # the registrant's account was deleted: nothing may change
        return permissions.OwnerClaims(org_wide=False)
    return permissions.owner_claims(location.created_by)


def _registrant(location: Location):
    """Whose sight a refresh reads with, as it reads with their claims: None (everything) for an
    org-wide location, nobody's for one whose registrant's account was deleted."""
    if location.org_wide:
        return None
    if location.created_by_id is None:
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return location.created_by


def _read_and_store(*, target: str, file_roots, location: Location | None, actor,
                    claims: permissions.OwnerClaims, store: bool = True, upload_dir: str | None = None,
                    also: Callable[[], None] | None = None, unreadable_kept: bool = False, viewer=None) -> Plan:
    """`viewer`: whose sight decides what another team's private entity is to the read (None: the
    system's). `also`: more to store in the same transaction (an upload's files). `unreadable_kept` (a
    refresh): a registered target that cannot be read at all (its file or folder is gone, its uploaded
    files are not stored) is stored as the location's one error, its entities kept and flagged, instead
    of raising."""
    with _gc_paused():
        try:
            reader = _reader(target, file_roots, location, upload_dir)
        except DescriptorError as exc:
            if not (unreadable_kept and store and location is not None):
                raise
            return _store_unreadable(location, exc, actor)
        if store and reader.start_processes():
            try:
                return _stream(reader, location, actor, claims, also, viewer)
            finally:
                reader.stop_processes()
        if not store:
            return location_plan(target=target, file_roots=file_roots, location=location, reader=reader,
                                 claims=claims, viewer=viewer)
        reader.read()  # outside the transaction: reading files or URLs may be slow
        if reader.aborted is not None:
            _keep_scan_files(reader)  # the next scan resumes where this one stopped
        refuse_aborted(reader, location)
        with bulk_write_cache(len(reader.result.candidates)), transaction.atomic():
            _take_turn(location)
            plan = compare(reader, location, claims, viewer)
            if location is None and plan.refused:
                raise OwnershipRefused(plan)
            plan.location = location_apply(plan, actor=actor, orphan_strategy=settings.PLINTH_CATALOG_ORPHAN_STRATEGY)
            if also is not None:
                also()
            _forget_scan_files(reader)
    return plan


def _store_unreadable(location: Location, error: DescriptorError, actor) -> Plan:
    error.source = error.source or location.target
    with transaction.atomic():
        _take_turn(location)
        plan = unreadable(location, error)
        location_apply(plan, actor=actor, orphan_strategy=settings.PLINTH_CATALOG_ORPHAN_STRATEGY)
    return plan


STREAM_BATCH = 10_000  # candidates per write while a location is still being read
# A streamed registration into a catalog of fewer entities than this defers these tables' secondary
# indexes once its first batch is full (see portal.core.db.DeferredIndexes): recreating them then
# costs little even if the load turns out small. The owner index stays: a Group read during the
# load looks up the entities it owns (refresh_owner_teams).
BULK_LOAD_BELOW = 20_000
BULK_LOAD_TABLES = [Entity._meta.db_table, Relation._meta.db_table, EntityTag._meta.db_table]
BULK_LOAD_KEEP = ("entity_owner_name",)


def _stream(reader: Reader, location: Location | None, actor, claims: permissions.OwnerClaims,
            also: Callable[[], None] | None = None, viewer=None) -> Plan:
    """Read and store at once: a location read by several processes is written batch by batch while
    they go on reading, in one transaction (a quarter-million entities: the writes overlap the reads
    instead of following them). Forked before the transaction opens (see `Reader.start_processes`)."""
    # The size is known only once read; streaming means many files: the large-write cache.
    with bulk_write_cache(STREAM_BATCH, threshold=0), transaction.atomic():
        _take_turn(location)
        planner = Planner(reader, location, claims, viewer)
        plan = planner.plan
        writer = Writer(plan, actor=actor, orphan_strategy=settings.PLINTH_CATALOG_ORPHAN_STRATEGY)
        if Entity.objects.count() < BULK_LOAD_BELOW:
            writer.bulk_load = DeferredIndexes(BULK_LOAD_TABLES, keep=BULK_LOAD_KEEP)
            writer.bulk_load_rows = STREAM_BATCH  # a full first batch: a large load into a small catalog
        reader.read(on_candidates=lambda batch: writer.write(*planner.take(batch)), batch=STREAM_BATCH)
        planner.finish()
        if location is None and plan.refused:
            raise OwnershipRefused(plan)  # rolls the streamed batches back
        plan.location = writer.finish()
        if also is not None:
            also()
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
        if target.startswith(uploads.PREFIX):
            UploadBundle.objects.filter(name=uploads.split(target)[0]).delete()
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


# -- MLflow: "Sync now" and webhook deliveries --------------------------------------------------

# A job queued or running for longer than this is taken as lost (its worker died): a new one may start.


@transaction.atomic
def mlflow_sync_request(*, entity: Entity, actor) -> MlflowSyncJob:
    """Queue a targeted MLflow sync of one model. A second press while one runs returns that one."""
    if not permissions.may_sync_mlflow_model(actor, entity):
        raise PermissionDenied("Only the owning team's members and platform admins may sync this model.")
    active = selectors.pending_mlflow_sync_jobs(entity).select_for_update().first()
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
    search (in that transaction on SQLite, right after its commit on PostgreSQL), counted in the facets
    and filtered by visibility like every other entity. An entity whose ref exists already is linked,
    not changed. Returns {item key: entity id}; one audit event."""
    if not items:
        return {}
    now = timezone.now()
    # In ref order: concurrent observers inserting the same new refs wait for each other, never deadlock.
    by_ref = dict(sorted(((f"{item.kind_key}:default/{item.name}".lower(), item) for item in items),
                         key=lambda pair: pair[0]))
    existing = dict(engine().select_by_refs(["ref", "id"], list(by_ref)))
    # Plain values, loaded as a registration loads its entities (an observer sends thousands a batch:
    # Entity instances and bulk_create cost more than the insert; on PostgreSQL COPY, where a multi-row
    # INSERT of ~2,500 rows × 24 columns cost ~0.3 s a batch binding and parsing 60,000 parameters):
    # time-ordered uids as hex (appended to the unique index, not scattered over it) made in one go,
    # and the JSON text written once for the column and its hash (docs/lineage-performance.md).
    when = Entity._meta.get_field("created_at").get_db_prep_save(now, connection)
    tags = ["observed", observer]
    tags_json, visibility = json.dumps(tags), Entity._meta.get_field("visibility").get_default()
    refs, rows, cube_rows, cube_tags = [], [], [], []
    written: dict[str, tuple] = {}
    uids = iter(time_ordered_hexes(len(by_ref) - len(existing)))
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
                     team_id, "", visibility, tags_json, text, OBSERVED_SOURCE, digest, False, 0, when, when))
        cube = (item.kind_key, item.spec_type, "observed", owner, "default", "internal",
                item.owner_team.pk if item.owner_team else None)
        cube_rows.append(cube)
        cube_tags += [(tag, *cube) for tag in tags]
    if rows:
        # In ref order (above): a concurrent observer's same new ref is met in the same order.
        created = dict(zip(refs, engine().insert_entities(_OBSERVED_COLUMNS, rows, refs), strict=True))
        engine().load(EntityTag, ["entity_id", "tag"], [(created[ref], tag) for ref in refs for tag in tags])
        existing.update(created)
        previous, current = facets.bump()
        transaction.on_commit(lambda: facets.roll_forward(previous, current, ([], []), (cube_rows, cube_tags)))
        audit_record(actor=actor, action="catalog.entity.observe", target=f"observed:{observer}",
                     after={"refs": refs[:AUDIT_REF_CAP], "count": len(refs)})
        snapshot = {ref: (created[ref], team_id, cand) for ref, (team_id, cand) in written.items()}
        if connection.vendor == "postgresql":
            # Indexed right after the commit, in a transaction of its own: concurrent observers naming
            # the same new datasets wait for each other's uncommitted node and entity keys, and indexing
            # inside the batch held them ~0.2 s longer a batch (docs/lineage-performance.md).
            transaction.on_commit(lambda: _observed_index(list(snapshot.values())))
        else:
            # SQLite: inside this transaction (entities_staged, as a registration does), so that the
            # ingest takes the one write lock once per batch instead of twice.
            _observed_stage(list(snapshot.values()))
        transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=refs, removed=[],
                                                                    snapshot=snapshot, staged=True))
    return {item.key: existing[ref] for ref, item in by_ref.items()}


def _observed_stage(written: list[tuple]) -> None:
    staged: dict = {}
    signals.entities_staged.send(sender=Entity, state=staged, written=written)
    signals.entities_staged.send(sender=Entity, state=staged, written=[], done=True)


def _observed_index(written: list[tuple]) -> None:
    """After the commit that created them: the entities exist whatever happens here, so a failure is
    logged (the search repair sweep, `index.repair`, indexes them) rather than failing the request."""
    try:
        with transaction.atomic():
            _observed_stage(written)
    except Exception:
        log.exception("search index of %d observed entities failed", len(written))


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


class NotAnOrphan(Exception):
    """The entity is defined by a location: it is unregistered there, or removed from its file."""


@transaction.atomic
def orphan_delete(*, entity: Entity, actor) -> str:
    """Delete an orphan: an entity gone from its location and kept, flagged, by the `keep` strategy
    (Backstage's "delete entity" on an orphan). Its docs, results and relations go with it (cascade);
    search, facets, the lineage graph and the audit trail follow. Returns its ref."""
    if not permissions.may_delete_orphan(actor, entity):
        raise PermissionDenied("Only maintainers and admins of the team that owns it, and platform admins, may "
                               "delete an orphan.")
    row = Entity.objects.select_for_update().filter(pk=entity.pk).values("orphan", "location_id", "ref").first()
    if row is None or not row["orphan"] or row["location_id"] is not None:
        raise NotAnOrphan(f"{entity.ref} is not an orphan: its location still defines it. Remove it from its file "
                          f"(or unregister the location) instead.")
    ref = row["ref"]
    _delete_entities([entity.pk], [ref])
    audit_record(actor=actor, action="catalog.entity.delete_orphan", target=ref,
                 before={"ref": ref, "source": entity.source, "owner": entity.owner_ref})
    return ref


def _delete_entities(ids: list[int], refs: list[str]) -> None:
    """Delete these entities (what hangs on them cascades) inside the caller's transaction; on commit
    the facet counts roll forward and `entities_changed` names them as removed."""
    before = facets.old_rows(ids)
    Entity.objects.filter(pk__in=ids).delete()
    previous, current = facets.bump()
    transaction.on_commit(lambda: facets.roll_forward(previous, current, before, ([], [])))
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=[], removed=refs))


def observed_entities_remove(*, entity_ids: list[int], reason: str, actor=None) -> list[str]:
    """Delete observed entities (only those: no location, source `observed`) that a declared entity has
    superseded, inside the caller's transaction; search, facets and the audit trail follow."""
    rows = list(Entity.objects.filter(pk__in=entity_ids, source=OBSERVED_SOURCE, location__isnull=True)
                .values_list("id", "ref"))
    if not rows:
        return []
    ids, refs = [pk for pk, _ in rows], [ref for _, ref in rows]
    _delete_entities(ids, refs)
    audit_record(actor=actor, action="catalog.entity.observed_removed", target=refs[0] if len(refs) == 1 else
                 f"observed:{len(refs)}", before={"refs": refs[:AUDIT_REF_CAP], "reason": reason})
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
    from .ingest.reader import build_candidate

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
                                 for _, src, rtype, dst in relation_rows(entity.pk, candidate))
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
    removed = [ref for _, ref in rows]
    _delete_entities([pk for pk, _ in rows], removed)
    for ref in removed:
        audit_record(actor=actor, actor_label=actor_label, action="catalog.entity.delete", target=ref,
                     after={"source": source_prefix})
    return removed
