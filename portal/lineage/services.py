"""Writes of the lineage app: storing OpenLineage events (`lineage_ingest`), mapping nodes to catalog
entities, and run retention. Each runs in one transaction: a batch is stored whole or not at all."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from catalog import services as catalog_services
from catalog.experiments import dataset_address
from catalog.models import Entity, ExperimentRun, RunInput
from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.db import insert_values, update_values, values_in, values_table

from .events import Checked, DatasetRef, normalise_dataset
from .models import TERMINAL_STATES, ColumnEdge, Edge, Event, Node, NodeType, Run, RunState, node_key

log = logging.getLogger("plinth.lineage")
CHUNK = 5000
JOB_ANNOTATION = "openlineage.io/job"
DATASET_ANNOTATION = "openlineage.io/dataset"
ANNOTATION_FOR = {NodeType.DATASET: DATASET_ANNOTATION, NodeType.JOB: JOB_ANNOTATION}
KIND_FOR = {NodeType.DATASET: "dataset", NodeType.JOB: "pipeline"}
# Run facets and job facets kept on the run; the rest stay in the raw event.
RUN_FACETS = ("parent", "processing_engine", "errorMessage", "nominalTime", "environmentVariables",
              "executionParameters", "externalQuery", "tags", "jobDependencies", "extractionError")
_NAME_JUNK = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class IngestResult:
    received: int
    stored: int
    duplicates: int
    runs: list[str]

    def as_dict(self) -> dict:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates,
                "runs": self.runs}


class RunJobConflict(Exception):
    """A runId sent for a job other than the one its run belongs to (the API answers 409). `index` is
    the first such event of the request; `stored` is None when the reader may not see that job."""

    def __init__(self, run_id: uuid.UUID, stored: str | None, sent: str, index: int):
        self.run_id, self.stored, self.sent, self.index = run_id, stored, sent, index
        owner = f"job {stored}" if stored else "another job"
        super().__init__(f"runId {run_id} is a run of {owner}, not of job {sent}: a runId names one run of "
                         "one job (send a new runId for each run)")


def _job_name(event: Checked) -> str:
    return f"{event.job.namespace}/{event.job.name}"


def dedupe_key(event: Checked) -> str:
    """(runId, eventType, eventTime) for a RunEvent; (node, eventTime) for the others. The time is the
    instant, so `Z` and `+00:00` spellings of one event are the same event."""
    stamp = event.event_time.isoformat(timespec="microseconds")
    if event.kind == "run":
        raw = f"run\0{event.run_id}\0{event.event_type}\0{stamp}"
    else:
        ref = event.dataset or event.job
        raw = f"{event.kind}\0{ref.namespace}\0{ref.name}\0{stamp}"
    return hashlib.sha256(raw.encode()).hexdigest()


def lineage_ingest(*, events: list[Checked], actor) -> IngestResult:
    """Store checked events (see `portal.lineage.events.check`) in one transaction. Events already stored
    (same dedupe key) are skipped; everything else of the batch is stored or nothing is."""
    if actor is not None and not permissions.may_post_lineage(actor):
        raise PermissionDenied("Sending lineage needs the member role (or higher) in a team.")
    batch = _Batch(events)  # what no stored row decides, made before the write turn (docs/lineage.md)
    for attempt in range(3):
        try:
            with _writer_turn() as release, transaction.atomic():
                transaction.on_commit(release)  # the first hook: the next batch starts while receivers run
                return _Ingest(batch, actor).run()
        except IntegrityError:
            # Another request stored the same new run or event between our read and our insert (two
            # CI jobs sending at once): nothing of this batch was kept; read again and merge with it.
            if attempt == 2:
                raise
        except OperationalError as exc:
            # PostgreSQL chose this batch as a deadlock's victim (or a serialisation failure): rolled
            # back whole, so it is safe to run again. Anything else is not retried.
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) not in _TRANSIENT_SQLSTATES:
                raise
    raise AssertionError("unreachable")


_TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
TURN_POLL_SECONDS, TURN_WAIT_SECONDS = 0.0005, 20.0


@contextlib.contextmanager
def _writer_turn():
    """SQLite: concurrent ingest requests (web workers) queue for the database's one write lock on a
    file lock beside the database, polled every half millisecond, and release it at commit. Left to
    SQLite, a writer that finds the lock taken sleeps 1, 2, 5, 10, … 25, 50, 100 ms between tries and
    wakes on average half a sleep after the lock came free: the lock then sits idle between batches
    (docs/lineage-performance.md). Yields the release (idempotent). After TURN_WAIT_SECONDS without a
    turn (a stuck writer), or outside SQLite, inside an outer transaction (which may hold the write
    lock already) or on an in-memory database, it steps aside: SQLite's own busy timeout decides."""
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or connection.in_atomic_block or not os.path.isabs(name):
        yield lambda: None
        return
    fd = os.open(f"{name}.ingest-turn", os.O_RDWR | os.O_CREAT, 0o600)
    held = False

    def release() -> None:
        nonlocal held, fd
        if held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            held = False
        if fd >= 0:
            os.close(fd)
            fd = -1

    try:
        deadline = time.monotonic() + TURN_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(TURN_POLL_SECONDS)
        yield release
    finally:
        release()


Ident = tuple[str, str, str]  # a node: (type, namespace, name)


class _Batch:
    """A batch as the events alone decide it, made before the write turn: on SQLite every batch waits
    for the database's one write lock, so whatever is computed here is no longer computed while the
    other web workers wait (a third of what the lock was held for, docs/lineage-performance.md). The
    events in time order without repeats, and the plan of what they write (`_Plan`) for the common case
    where none was stored before; the writer makes a plan of its own for the rest."""

    def __init__(self, events: list[Checked]):
        self.events = events  # in the request's order: a refusal names the index
        self.received = len(events)
        jobs: dict[uuid.UUID, Checked] = {}
        for index, event in enumerate(events):
            if event.kind == "run":
                first = jobs.setdefault(event.run_id, event)
                if first.job.name != event.job.name or first.job.namespace != event.job.namespace:
                    raise RunJobConflict(event.run_id, _job_name(first), _job_name(event), index)
        self.now_db = connection.ops.adapt_datetimefield_value(timezone.now())
        keyed: dict[str, Checked] = {}
        for event in events:
            keyed.setdefault(dedupe_key(event), event)
        # facets and states: the latest event wins
        self.ordered = sorted(keyed.items(), key=lambda pair: pair[1].event_time)
        self.whole = _Plan(self.ordered)

    def plan(self, fresh: list[tuple[str, Checked]]) -> _Plan:
        return self.whole if len(fresh) == len(self.ordered) else _Plan(fresh)


class _Plan:
    """What `fresh` (dedupe key, event) pairs write, in terms of node identities and run ids rather than
    row ids: the node facets, each node's key, the runs folded as if new, the raw event rows and the
    edges. Never changed by the writer (a retried batch uses it again)."""

    def __init__(self, fresh: list[tuple[str, Checked]]):
        when = connection.ops.adapt_datetimefield_value
        wanted: dict[Ident, dict] = {}  # the batch's facets of each node, latest last
        for _, event in fresh:
            for type_, ref in _refs(event):
                ident = (type_, ref.namespace, ref.name)
                facets = wanted.get(ident)
                if facets is None:
                    wanted[ident] = dict(ref.facets)
                elif ref.facets:
                    facets.update(ref.facets)
        for facets in wanted.values():
            facets.pop("columnLineage", None)  # a node keeps the latest of each facet but columnLineage
        self.wanted = wanted
        self.run_events = [e for _, e in fresh if e.kind == "run"]
        # Each run folded from nothing, as a run no stored row holds yet, with its first event's job.
        self.folded: dict[uuid.UUID, tuple[_RunRow, Ident]] = {}
        for event in self.run_events:  # in event-time order
            folded = self.folded.get(event.run_id)
            if folded is None:
                folded = self.folded[event.run_id] = (
                    _RunRow(event.run_id, 0, state=event.event_type, state_time=event.event_time),
                    (NodeType.JOB, event.job.namespace, event.job.name))
            _merge(folded[0], event)
        self.event_rows = [(key, e.kind, e.run_id, e.event_type, when(e.event_time),
                            e.payload_json or json.dumps(e.payload)) for key, e in fresh]
        self.edges: dict[tuple[Ident, Ident], uuid.UUID | None] = {}
        self.columns: dict[tuple[Ident, str, Ident, str], tuple[str, uuid.UUID | None]] = {}
        extra: dict[Ident, dict] = {}  # column sources that no input or output names
        for _, event in fresh:
            if event.kind == "dataset":
                continue
            job = (NodeType.JOB, event.job.namespace, event.job.name)
            for ref in event.inputs:
                self.edges[((NodeType.DATASET, ref.namespace, ref.name), job)] = event.run_id
            for ref in event.outputs:
                target = (NodeType.DATASET, ref.namespace, ref.name)
                self.edges[(job, target)] = event.run_id
                lineage = ref.facets.get("columnLineage")
                for field_name, spec in ((lineage or {}).get("fields") or {}).items():
                    for source in spec.get("inputFields") or []:
                        src = (NodeType.DATASET, *normalise_dataset(source["namespace"], source["name"]))
                        if src not in wanted:
                            extra[src] = {}
                        self.columns[(src, str(source["field"])[:300], target, field_name[:300])] = (
                            json.dumps(source.get("transformations") or []), event.run_id)
        self.extra = extra
        self.keys = {ident: node_key(*ident) for ident in (*wanted, *extra)}


class _Ingest:
    """One batch, written with one statement per table (executemany or INSERT … ON CONFLICT) and one
    read back of the ids it needs: ORM model instances, bulk_update's CASE expressions and per-value
    field preparation cost more than the writes themselves (docs/lineage-performance.md)."""

    def __init__(self, batch: _Batch, actor):
        self.batch, self.actor = batch, actor
        self._now_db = batch.now_db
        self.keys: dict[Ident, str] = {}  # every node the plan names → its key (`_Plan.keys`)
        # (type, namespace, name) → {"id", "key", "entity_id", "facets" (None: not read), "type", "namespace", "name"}
        self.nodes: dict[Ident, dict] = {}

    def run(self) -> IngestResult:
        fresh = self._fresh()
        if fresh:
            plan = self.batch.plan(fresh)
            self.keys = plan.keys
            self._nodes(plan)
            runs = self._runs(plan)
            self._events(plan, runs)
            self._edges(plan, runs)
            self._entities()
        run_ids = list(dict.fromkeys(str(e.run_id) for _, e in fresh if e.run_id))
        received = self.batch.received
        return IngestResult(received=received, stored=len(fresh), duplicates=received - len(fresh), runs=run_ids)

    # -- idempotency --------------------------------------------------------------------------------

    def _fresh(self) -> list[tuple[str, Checked]]:
        ordered = self.batch.ordered
        seen = {row[0] for row in _select_in(Event, ["dedupe"], "dedupe", [key for key, _ in ordered])}
        return [pair for pair in ordered if pair[0] not in seen] if seen else ordered

    # -- nodes --------------------------------------------------------------------------------------

    def _nodes(self, plan: _Plan) -> None:
        wanted = plan.wanted
        # Column sources no input or output names are created too, without facets.
        self._ensure_nodes({**wanted, **plan.extra} if plan.extra else wanted)
        # Facets merge into what is stored; only nodes whose facets change are written.
        sent = [ident for ident, facets in wanted.items() if facets]
        self._read_facets(sent)
        changed = []
        for ident in sent:
            node = self.nodes[ident]
            merged = {**node["facets"], **wanted[ident]}
            if merged != node["facets"]:
                node["facets"] = merged
                changed.append((json.dumps(merged), self._now_db, node["id"]))
        changed.sort(key=lambda row: row[2])  # row locks in id order, as every writer takes them
        update_values(Node, ["facets", "updated_at"], changed)

    def _ensure_nodes(self, wanted: dict[tuple[str, str, str], dict]) -> None:
        """Every node the batch names in self.nodes, inserted (with the batch's facets) when new."""
        idents = [ident for ident in wanted if ident not in self.nodes]
        self._read_nodes(idents)
        missing = [ident for ident in idents if ident not in self.nodes]
        if not missing:
            return
        now = self._now_db
        # In key order: two requests inserting the same new nodes wait for each other instead of
        # deadlocking on PostgreSQL's unique index (each would hold a key the other one wants).
        _insert(Node, ["key", "type", "namespace", "name", "facets", "created_at", "updated_at"],
                sorted((self.keys[ident], *ident, json.dumps(wanted.get(ident) or {}), now, now) for ident in missing),
                conflict=["key"])  # a node another request inserted meanwhile is read back and merged
        self._read_nodes(missing)

    def _read_nodes(self, idents: list[tuple[str, str, str]]) -> None:
        by_key = {self.keys[ident]: ident for ident in idents}
        for pk, key, entity_id in _select_in(Node, ["id", "key", "entity_id"], "key", list(by_key)):
            type_, namespace, name = ident = by_key[key]
            self.nodes[ident] = {"id": pk, "key": key, "entity_id": entity_id, "facets": None, "type": type_,
                                 "namespace": namespace, "name": name}

    def _read_facets(self, idents: list[tuple[str, str, str]]) -> None:
        unread = {self.nodes[ident]["id"]: self.nodes[ident] for ident in idents if self.nodes[ident]["facets"] is None}
        for pk, facets in _select_in(Node, ["id", "facets"], "id", list(unread)):
            unread[pk]["facets"] = _json_value(facets) or {}

    # -- runs ---------------------------------------------------------------------------------------

    def _runs(self, plan: _Plan) -> dict[uuid.UUID, _RunRow]:
        by_id: dict[uuid.UUID, _RunRow] = {}
        if plan.folded:  # most runs of a batch are new: one cheap read of which are not, then those rows by id
            found = _select_in(Run, ["id"], "run_id", [_db_uuid(i) for i in plan.folded])
            if found:
                for start in range(0, len(found), CHUNK):
                    chunk = [row[0] for row in found[start:start + CHUNK]]
                    for pk, run_id, job_id, *values in Run.objects.filter(pk__in=chunk).values_list(
                            "id", "run_id", "job_id", *_RUN_FIELDS):
                        by_id[run_id] = _RunRow(run_id, job_id, **dict(zip(_RUN_FIELDS, values, strict=True)), pk=pk)
        known = set(by_id)
        if known:  # stored runs: their events folded into what is stored, in event-time order
            for event in plan.run_events:
                if event.run_id in known:
                    _merge(by_id[event.run_id], event)
        touched: dict[uuid.UUID, _RunRow] = {}
        nodes = self.nodes
        for run_id in known:
            if by_id[run_id].job_id != nodes[plan.folded[run_id][1]]["id"]:
                raise self._conflict(run_id, by_id[run_id].job_id)
        for run_id, (folded, job) in plan.folded.items():  # in the order the batch first names them
            if run_id not in known:
                by_id[run_id] = dataclasses.replace(folded, job_id=nodes[job]["id"])
            touched[run_id] = by_id[run_id]
        new = [run for key, run in touched.items() if key not in known]
        old = [run for key, run in touched.items() if key in known]
        if new:
            _insert(Run, ["run_id", "job_id", *_RUN_FIELDS, "updated_at"], [self._run_row(r) for r in new])
            for pk, run_id in _select_in(Run, ["id", "run_id"], "run_id", [_db_uuid(r.run_id) for r in new]):
                by_id[run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id)].pk = pk
        update_values(Run, [*_RUN_FIELDS, "updated_at"],
                      sorted(((*self._run_row(r)[2:], r.pk) for r in old), key=lambda row: row[-1]))
        self._last_runs(list(touched.values()))
        return by_id

    def _conflict(self, run_id: uuid.UUID, job_id: int) -> RunJobConflict:
        """A stored run of another job: the batch stops (nothing of it is kept). That job is named only
        to a sender who may see it."""
        job = Node.objects.select_related("entity").get(pk=job_id)
        named = (self.actor is None or job.entity is None
                 or permissions.filter_visible(Entity.objects.filter(pk=job.entity_id), self.actor).exists())
        index, event = next((i, e) for i, e in enumerate(self.batch.events) if e.run_id == run_id)
        return RunJobConflict(run_id, f"{job.namespace}/{job.name}" if named else None, _job_name(event), index)

    def _run_row(self, run: _RunRow) -> tuple:
        """(run_id, job_id, *_RUN_FIELDS, updated_at) as the database takes them."""
        when, native_uuid = connection.ops.adapt_datetimefield_value, connection.features.has_native_uuid_field
        parent = run.parent_run_id
        return (run.run_id if native_uuid else run.run_id.hex, run.job_id, run.state, when(run.started_at),
                when(run.ended_at), when(run.state_time), run.error_message,
                parent if native_uuid or parent is None else parent.hex, json.dumps(run.facets),
                json.dumps(run.job_facets), self._now_db)

    def _last_runs(self, runs: list[_RunRow]) -> None:
        """Each job's latest run by start (a resent old run does not replace a newer one)."""
        latest: dict[int, _RunRow] = {}
        for run in runs:
            best = latest.get(run.job_id)
            if best is None or (run.started_at or run.state_time) >= (best.started_at or best.state_time):
                latest[run.job_id] = run
        current = dict(_select_in(Node, ["id", "last_run_id"], "id", list(latest)))
        others = {pk: started or state_time for pk, started, state_time in Run.objects.filter(
            pk__in=[v for v in current.values() if v]).values_list("pk", "started_at", "state_time")}
        updates = []
        for job_id, run in latest.items():
            other_pk = current.get(job_id)
            if other_pk == run.pk:
                continue
            other = others.get(other_pk)
            if other is None or (run.started_at or run.state_time) >= other:
                updates.append((run.pk, job_id))
        update_values(Node, ["last_run_id"], sorted(updates, key=lambda p: p[1]))

    # -- raw events ---------------------------------------------------------------------------------

    def _events(self, plan: _Plan, runs: dict[uuid.UUID, _RunRow]) -> None:
        now = self._now_db
        _insert(Event, ["dedupe", "kind", "run_id", "event_type", "event_time", "payload", "received_at"],
                [(key, kind, runs[run_id].pk if run_id else None, event_type, when, payload, now)
                 for key, kind, run_id, event_type, when, payload in plan.event_rows])

    # -- edges --------------------------------------------------------------------------------------

    def _edges(self, plan: _Plan, runs: dict[uuid.UUID, _RunRow]) -> None:
        nodes, now = self.nodes, self._now_db
        _insert(Edge, ["source_id", "target_id", "run_id", "updated_at"],
                sorted((nodes[s]["id"], nodes[t]["id"], runs[r].pk if r else None, now)
                       for (s, t), r in plan.edges.items()),
                conflict=["source_id", "target_id"], update=["run_id", "updated_at"])
        _insert(ColumnEdge, ["source_id", "source_field", "target_id", "target_field", "transformations", "run_id",
                             "updated_at"],
                sorted((nodes[s]["id"], sf, nodes[t]["id"], tf, tr, runs[r].pk if r else None, now)
                       for (s, sf, t, tf), (tr, r) in plan.columns.items()),
                conflict=["target_id", "target_field", "source_id", "source_field"],
                update=["transformations", "run_id", "updated_at"])

    # -- the catalog --------------------------------------------------------------------------------

    def _entities(self) -> None:
        """Nodes without an entity get an observed one (declared entities were linked when registered,
        see `link_declared`)."""
        unmapped = [ident for ident, n in self.nodes.items() if n["entity_id"] is None]
        if not unmapped:
            return
        self._read_facets(unmapped)  # ownership and documentation name the owner and the description
        nodes = [self.nodes[ident] for ident in unmapped]
        claims = permissions.lineage_owner_claims(self.actor) if self.actor is not None else None
        teams = _teams_named(nodes)
        items = []
        for node in nodes:
            team = _owner_team(node["facets"], teams)
            if team is not None and claims is not None and not claims.org_wide and team.pk not in claims.team_ids:
                team = None  # the sender may not give this team an asset: unowned, for an admin to claim
            items.append(_observed(node, team))
        ids = catalog_services.observed_entities_create(items=items, observer="openlineage", actor=self.actor)
        update_values(Node, ["entity_id"], sorted(((ids[n["key"]], n["id"]) for n in nodes if n["key"] in ids),
                                                  key=lambda row: row[1]))
        for node in nodes:
            node["entity_id"] = ids.get(node["key"])


_RUN_FIELDS = ("state", "started_at", "ended_at", "state_time", "error_message", "parent_run_id", "facets",
               "job_facets")


@dataclass(slots=True)
class _RunRow:
    """A run as `_merge` folds events into it (the columns of `Run`, without a model instance)."""

    run_id: uuid.UUID
    job_id: int
    state: str
    state_time: datetime
    pk: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error_message: str = ""
    parent_run_id: uuid.UUID | None = None
    facets: dict = field(default_factory=dict)
    job_facets: dict = field(default_factory=dict)


def _select_in(model, columns: list[str], column: str, values: list) -> list[tuple]:
    """Rows of `model`'s table whose `column`, a unique one, is one of `values` (strings, integers or
    UUIDs, passed as they are: the ORM's `__in` prepared each value through its field, a tenth of a
    batch's time), CHUNK at a time.

    On PostgreSQL the values go as one array parameter, each probing the column's unique index
    (`LATERAL … LIMIT 1`, which the planner cannot turn into a join). With an `IN` list of a batch's
    ~2,300 node keys it chose a parallel scan of the whole node table by its cost model (random page
    cost 4): 25-36 ms a batch against 4-5 ms for the probes, and a millisecond of planning against
    0.05 ms (docs/lineage-performance.md, "Meeting 5,000 on PostgreSQL: the node lookup")."""
    quote = connection.ops.quote_name
    table, wanted, column = quote(model._meta.db_table), ", ".join(quote(c) for c in columns), quote(column)
    values = list(dict.fromkeys(values))  # a repeated value would be probed, and returned, twice
    postgres = connection.vendor == "postgresql"
    first = values[0] if values else None
    ints, cast = isinstance(first, int), "::uuid" if isinstance(first, uuid.UUID) else ""  # UUIDs go as text
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(values), CHUNK):
            chunk = values[start:start + CHUNK]
            if postgres:
                given, params = values_table(chunk, text=not ints)
                cursor.execute(f"SELECT r.* FROM {given} CROSS JOIN LATERAL (SELECT {wanted} FROM {table} "  # noqa: S608
                               f"WHERE {column} = v.value{cast} LIMIT 1) AS r", params)
            else:
                cursor.execute(f"SELECT {wanted} FROM {table} WHERE {column} IN ({', '.join(['%s'] * len(chunk))})",  # noqa: S608
                               chunk)
            rows.extend(cursor.fetchall())
    return rows


def _db_uuid(value: uuid.UUID):
    """A UUID as the database compares it: native on PostgreSQL, 32 hex digits on SQLite."""
    return value if connection.features.has_native_uuid_field else value.hex


def _json_value(value):
    """A JSON column read by a raw cursor: text on SQLite (and psycopg's jsonb as Django loads it), or
    already a value. Read as the JSONField reads it (json, not orjson: the stored text may hold NaN)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _insert(model, columns: list[str], rows: list[tuple], *, conflict: list[str] = (),
            update: list[str] = ()) -> None:
    """INSERT of every row (`insert_values`: executemany on SQLite, several rows to a statement on
    PostgreSQL); with `conflict`, ON CONFLICT DO UPDATE `update` (or DO NOTHING). Both engines speak it;
    the ORM's bulk_create prepares every value through the field machinery, which cost more than the
    writes. The callers' rows never repeat a conflict key, which one statement could not update twice."""
    quote = connection.ops.quote_name
    tail = ""
    if conflict:
        tail = f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) "
        tail += (f"DO UPDATE SET {', '.join(f'{quote(c)} = excluded.{quote(c)}' for c in update)}" if update
                 else "DO NOTHING")
    insert_values(model, columns, rows, tail)


def _refs(event: Checked) -> Iterable[tuple[str, DatasetRef]]:
    if event.dataset is not None:
        yield NodeType.DATASET, event.dataset
    if event.job is not None:
        yield NodeType.JOB, event.job
    for ref in (*event.inputs, *event.outputs):
        yield NodeType.DATASET, ref


def _merge(run: _RunRow, event: Checked) -> None:
    """Fold one event into its run: terminal states win over START/RUNNING whatever the arrival order;
    otherwise the later eventTime decides."""
    when, state = event.event_time, event.event_type
    if state == RunState.START or run.started_at is None:
        run.started_at = min(run.started_at or when, when)
    if state in TERMINAL_STATES:
        run.ended_at = when if run.ended_at is None else max(run.ended_at, when)
    if state != RunState.OTHER:
        current_terminal = run.state in TERMINAL_STATES
        if (state in TERMINAL_STATES and (not current_terminal or when >= run.state_time)) or (
                not current_terminal and when >= run.state_time) or run.state == RunState.OTHER:
            run.state, run.state_time = state, when
    facets = {k: v for k, v in event.run_facets.items() if k in RUN_FACETS}
    if facets:
        run.facets = {**run.facets, **facets}
    if event.job and event.job.facets:
        run.job_facets = {**run.job_facets, **event.job.facets}
    error = (event.run_facets.get("errorMessage") or {}).get("message")
    if error:
        run.error_message = str(error)[:10_000]
    parent = ((event.run_facets.get("parent") or {}).get("run") or {}).get("runId")
    if parent:
        # The parent facet's schema says uuid; a producer that sends otherwise keeps its run.
        with contextlib.suppress(ValueError):
            run.parent_run_id = uuid.UUID(str(parent))


def _teams_named(nodes: list[dict]) -> dict[str, Team]:
    names = set()
    for node in nodes:
        for owner in ((node["facets"].get("ownership") or {}).get("owners") or []):
            names.add(_team_name(owner.get("name", "")))
    names.discard("")
    return {t.name: t for t in Team.objects.filter(name__in=names)} if names else {}


def _team_name(owner: str) -> str:
    """`team:fraud-ml`, `group:default/fraud-ml` or `fraud-ml` → `fraud-ml`."""
    owner = str(owner).strip().lower()
    for prefix in ("group:default/", "group:", "team:"):
        if owner.startswith(prefix):
            return owner[len(prefix):]
    return owner


def _owner_team(facets: dict, teams: dict[str, Team]) -> Team | None:
    for owner in (facets.get("ownership") or {}).get("owners") or []:
        team = teams.get(_team_name(owner.get("name", "")))
        if team is not None:
            return team
    return None


def entity_name(type_: str, namespace: str, name: str) -> str:
    """A valid, stable catalog name for a node: its readable tail and a hash of its identity (names
    are 63 characters at most; two tables called `orders` in two databases stay apart)."""
    digest = node_key(type_, namespace, name)[:8]
    tail = _NAME_JUNK.sub("-", name).strip("-._")[-(63 - 9):].strip("-._") or type_
    return f"{tail}-{digest}"


def _observed(node: dict, team: Team | None) -> catalog_services.Observed:
    type_, namespace, name = node["type"], node["namespace"], node["name"]
    docs = (node["facets"].get("documentation") or {}).get("description") or ""
    scheme = namespace.split("://", 1)[0] if "://" in namespace else ""
    spec_type = (re.sub(r"[^a-z0-9-]", "", scheme.lower())[:100] or "table") if type_ == NodeType.DATASET else "other"
    return catalog_services.Observed(
        key=node["key"], kind_key=KIND_FOR[type_], name=entity_name(type_, namespace, name),
        title=dataset_address(namespace, name) if type_ == NodeType.DATASET else f"{namespace}/{name}",
        spec_type=spec_type,
        annotations={ANNOTATION_FOR[type_]: f"{namespace}/{name}"}, owner_team=team, description=str(docs))


# -- declared entities ------------------------------------------------------------------------------


def split_annotation(value: str, type_: str) -> tuple[str, str]:
    """`<namespace>/<name>` of an `openlineage.io/job|dataset` annotation. A job's name is the last segment.
    A dataset's namespace ends at the URL authority (`s3://bucket` + `a/b.parquet`, `postgres://host:5432` +
    `db.schema.table`) or, without `://`, at the first slash (`file` + `/data/x.csv`): dataset names hold
    slashes (object keys, file paths), as OpenLineage's naming spec and MLflow's inputs spell them."""
    if type_ == NodeType.JOB:
        namespace, _, name = value.rpartition("/")
        return namespace, name
    scheme, sep, rest = value.partition("://")
    if sep:
        authority, _, name = rest.partition("/")
        return f"{scheme}://{authority}", name
    namespace, _, name = value.partition("/")
    return namespace, name


def annotation_target(entity_data: dict) -> tuple[str, str, str] | None:
    """(node type, namespace, name) an entity declares with `openlineage.io/job|dataset: <ns>/<name>`
    (see `split_annotation`)."""
    annotations = (entity_data.get("metadata") or {}).get("annotations") or {}
    for type_, key in ((NodeType.JOB, JOB_ANNOTATION), (NodeType.DATASET, DATASET_ANNOTATION)):
        value = annotations.get(key)
        if isinstance(value, str) and "/" in value.strip("/"):
            namespace, name = split_annotation(value.strip(), type_)
            if not namespace or not name:
                continue
            if type_ == NodeType.DATASET:
                namespace, name = normalise_dataset(namespace, name)
            return type_, namespace, name
    return None


def link_declared(*, entity_ids: list[int] | None = None) -> int:
    """Link nodes to the entities that declare them by annotation (creating the node when no event named
    it yet). A node linked to an observed entity moves to the declared one. Returns links written."""
    qs = Entity.objects.filter(kind_key__in=["dataset", "pipeline"]).exclude(source=catalog_services.OBSERVED_SOURCE)
    if entity_ids is not None:
        qs = qs.filter(pk__in=values_in(entity_ids))
    written = 0
    superseded: list[int] = []
    with transaction.atomic():
        for pk, data in qs.values_list("pk", "data").iterator(chunk_size=2000):
            target = annotation_target(data)
            if target is None:
                continue
            type_, namespace, name = target
            if type_ == NodeType.DATASET:
                _relink_run_inputs(pk, data)
            key = node_key(type_, namespace, name)
            node, created = Node.objects.get_or_create(key=key, defaults=dict(
                type=type_, namespace=namespace[:1000], name=name[:1000], entity_id=pk))
            if not created and node.entity_id != pk:
                if node.entity_id is not None:
                    superseded.append(node.entity_id)
                Node.objects.filter(pk=node.pk).update(entity_id=pk)
            written += 1
        # An observed stand-in is no longer needed once a descriptor declares the node.
        catalog_services.observed_entities_remove(entity_ids=superseded, reason="declared by a descriptor")
    return written


# -- MLflow run inputs ---------------------------------------------------------------------------------


def run_inputs_link(*, run_ids: list[int] | None = None) -> int:
    """Give every MLflow run input (`catalog.models.RunInput`, from `mlflow.log_input`) that the sync could
    not match to a Dataset entity one: the dataset's lineage node (created when no OpenLineage event named
    it yet) and its entity — declared by annotation, else an observed Dataset created exactly as for an
    OpenLineage dataset (`_observed`, `catalog.services.observed_entities_create`, unowned: an admin claims
    it on the unowned-assets page). Inputs without a source URI (a DataFrame built in code: namespace
    `mlflow`) name no dataset anyone else can, and stay unlinked. Returns the inputs linked."""
    qs = RunInput.objects.filter(entity__isnull=True).exclude(namespace="mlflow")
    if run_ids is not None:
        qs = qs.filter(run_id__in=run_ids)
    inputs = list(qs.only("id", "namespace", "dataset_name"))
    if not inputs:
        return 0
    with transaction.atomic():
        names = {item.pk: normalise_dataset(item.namespace, item.dataset_name) for item in inputs}
        keys = {node_key(NodeType.DATASET, ns, name): (ns, name) for ns, name in names.values()}
        nodes = {n.key: n for n in Node.objects.filter(key__in=list(keys))}
        for key, (ns, name) in keys.items():
            if key not in nodes:
                nodes[key], _ = Node.objects.get_or_create(key=key, defaults=dict(
                    type=NodeType.DATASET, namespace=ns[:1000], name=name[:1000]))
        unmapped = [{"key": n.key, "id": n.pk, "type": n.type, "namespace": n.namespace, "name": n.name,
                     "facets": n.facets or {}} for n in nodes.values() if n.entity_id is None]
        if unmapped:
            ids = catalog_services.observed_entities_create(
                items=[_observed(node, None) for node in unmapped], observer="openlineage", actor=None)
            Node.objects.bulk_update([Node(pk=n["id"], entity_id=ids[n["key"]]) for n in unmapped if n["key"] in ids],
                                     ["entity"], batch_size=1000)
            for node in unmapped:
                nodes[node["key"]].entity_id = ids.get(node["key"])
        linked = 0
        for item in inputs:
            entity_id = nodes[node_key(NodeType.DATASET, *names[item.pk])].entity_id
            if entity_id is not None:
                linked += RunInput.objects.filter(pk=item.pk, entity__isnull=True).update(entity_id=entity_id)
    return linked


def on_model_versions_synced(sender, entity_ids=(), **kwargs) -> None:
    """Catalog receiver, inside the MLflow sync's transaction: the synced runs' unmatched inputs get
    their dataset's entity (so a failure rolls the sync back with them: nothing half-written)."""
    run_ids = list(ExperimentRun.objects.filter(versions__entity_id__in=list(entity_ids))
                   .values_list("pk", flat=True).distinct())
    if run_ids:
        run_inputs_link(run_ids=run_ids)


def _relink_run_inputs(pk: int, data: dict) -> None:
    """A declared Dataset takes over the MLflow inputs its `openlineage.io/dataset` annotation names (from
    an observed stand-in, or from nothing), whenever it is registered — not only at the next MLflow sync.
    The annotation is split as `split_annotation` splits it (the name as MLflow's inputs spell it)."""
    value = ((data.get("metadata") or {}).get("annotations") or {}).get(DATASET_ANNOTATION)
    if not isinstance(value, str) or "/" not in value:
        return
    namespace, name = split_annotation(value.strip(), NodeType.DATASET)
    RunInput.objects.filter(namespace=namespace, dataset_name=name).exclude(entity_id=pk).update(entity_id=pk)


def on_entities_changed(sender, changed=(), removed=(), snapshot=None, **kwargs) -> None:
    """Catalog receiver: declared datasets and pipelines link to their nodes as soon as registered.
    `snapshot` (the writer's ids and candidates) spares reading back what was just written."""
    refs = [ref for ref in changed if ref.startswith(("dataset:", "pipeline:"))]
    if not refs:
        return
    try:
        snapshot = snapshot or {}
        # Only a descriptor with an openlineage.io annotation links (`annotation_target`).
        ids = [snapshot[ref][0] for ref in refs
               if ref in snapshot and snapshot[ref][2].source != catalog_services.OBSERVED_SOURCE
               and not {JOB_ANNOTATION, DATASET_ANNOTATION}.isdisjoint(snapshot[ref][2].annotations)]
        unknown = [ref for ref in refs if ref not in snapshot]
        if unknown:
            ids += list(Entity.objects.filter(ref__in=values_in(unknown, text=True))
                        .exclude(source=catalog_services.OBSERVED_SOURCE).values_list("pk", flat=True))
        if ids:
            link_declared(entity_ids=ids)
    except Exception:  # the catalog change is committed; `manage.py lineage link` repairs links
        log.exception("linking %d declared entities to lineage nodes failed", len(refs))


# -- retention and claims -----------------------------------------------------------------------------


def runs_prune(*, older_than_days: int | None = None, now: datetime | None = None) -> int:
    """Delete finished runs (and their events) that ended before the retention window. Each job keeps
    its latest run whatever its age, so its last state stays known. Returns runs deleted."""
    days = settings.PLINTH_LINEAGE_RUN_RETENTION_DAYS if older_than_days is None else older_than_days
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    keep = Node.objects.filter(last_run__isnull=False).values("last_run_id")
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(Run.objects.filter(ended_at__lt=cutoff).exclude(pk__in=keep).values_list("pk", flat=True)[:CHUNK])
            if not ids:
                return deleted
            Event.objects.filter(run_id__in=ids).delete()
            Run.objects.filter(pk__in=ids).delete()
            deleted += len(ids)


def unowned_claim(*, entity: Entity, team: Team, actor) -> Entity:
    """An admin assigns an owner team to an unowned asset (the catalog's service checks and audits)."""
    return catalog_services.entity_claim(entity=entity, team=team, actor=actor)
