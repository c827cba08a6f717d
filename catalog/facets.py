"""Fast counts for the catalog list: a "facet cube" cached per catalog version.

Counting a filtered 250k-entity table once per facet costs a scan each. Instead, one GROUP BY over
the facet columns plus visibility and owner team is computed once per catalog version (bumped by
every write) and cached, together with the same GROUP BY over (tag, facet columns); a list request
with only simple filters (kind, type, lifecycle, owner, namespace, and at most one tag) sums the
cube rows the user may see. Anything else (text, several tags, stars, "mine") is counted live by the
caller — those filters shrink the set first. With a tag filter, the tag facet (tags that occur
together) is counted live as well.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter, defaultdict

from django.core.cache import cache
from django.db import connections, router
from django.db.models import Count

from portal.accounts import permissions

from .models import CatalogState, Entity, EntityTag

CUBE_COLUMNS = ("kind_key", "spec_type", "lifecycle", "owner_ref", "namespace", "visibility", "owner_team_id")
SIMPLE = {"kind": 0, "type": 1, "lifecycle": 2, "owner": 3, "namespace": 4}
TAG = 5  # the position of the tag in tag rows, and the filter key for a (single) tag
TAG_COLUMNS = ("tag", *(f"entity__{c}" for c in CUBE_COLUMNS))
IGNORED_PARAMS = {"page", "order", "limit", "fields", "cursor", "facet"}
CACHE_SECONDS = 3600
MAX_DELTAS = 16  # writes to catch up on by their deltas; more, and the cube is arranged (or counted) afresh
WARM_QUEUED_KEY = "plinth:catalog:cube-warm-queued"
WARM_QUEUED_SECONDS = 60  # a lost task (worker killed) blocks queueing another for at most this long

log = logging.getLogger(__name__)
MEMO_SIZE = 256  # filter sets remembered per version and process


UNVERSIONED = 0  # no write has bumped the version yet: the entities there (if any) came another way


def version() -> int:
    # Read on every list and facet request: a plain statement, as the ORM took ten times the read
    # (0.4 ms against 0.03) to build it (docs/deployment.md, "Request latency").
    connection = connections[router.db_for_read(CatalogState)]
    quote, meta = connection.ops.quote_name, CatalogState._meta
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(meta.get_field('version').column)} FROM {quote(meta.db_table)} "  # noqa: S608
                       f"WHERE {quote(meta.pk.column)} = %s", [1])  # (names from the model)
        row = cursor.fetchone()
    return (row[0] if row else None) or UNVERSIONED


def bump() -> tuple[int, int]:
    """Called inside every transaction that changes entities: (the version before, the new one). The
    row is locked while it is read, so the version before is the one this write follows even when
    another writer commits in between (PostgreSQL; SQLite's IMMEDIATE transactions serialise writers
    anyway) and the cube rolled forward from it misses no other write. The version is random, not a
    counter: a counter restarts after a database restore (or a test flush) and would meet stale cache
    entries."""
    token = secrets.randbits(62)
    previous = lock()
    if previous == UNVERSIONED:
        CatalogState.objects.update_or_create(pk=1, defaults={"version": token})
    else:
        CatalogState.objects.filter(pk=1).update(version=token)
    return previous, token


def _key(current: int) -> str:
    return f"plinth:catalog:cube:v2:{current}"  # v2: tag rows carry every facet column


def _delta_key(current: int) -> str:
    return f"plinth:catalog:cube-delta:v1:{current}"


def lock() -> int:
    """The current version, its row locked until the transaction ends (PostgreSQL; SQLite's writers
    take turns anyway). Every catalog write takes it before it reads the rows it will change and
    changes them (`old_rows`, the ingest writer's first change), so no other write commits in between:
    the write's delta follows exactly the version read here, however many writers run at once. All of
    them take this lock first and the audit trail's head after it (no deadlock between two). A writer
    that found another write committed in between used to count the whole cube in its request (2.4-5 s
    at 250k)."""
    found = CatalogState.objects.select_for_update().filter(pk=1).values_list("version", flat=True).first()
    return found or UNVERSIONED


def old_rows(entity_ids: list[int]) -> tuple[list[tuple], list[tuple]]:
    """The cube rows of entities about to change or go, read under the catalog's write lock (`lock`).
    No ids (the ingest writer's batches of new entities only): no statement, not even the lock's."""
    if not entity_ids:
        return [], []
    lock()
    rows, tags = [], []
    for start in range(0, len(entity_ids), 5000):
        chunk = entity_ids[start:start + 5000]
        rows += list(Entity.objects.filter(pk__in=chunk).values_list(*CUBE_COLUMNS))
        tags += list(EntityTag.objects.filter(entity_id__in=chunk).values_list(*TAG_COLUMNS))
    return rows, tags


def roll_forward(previous: int | None, current: int, removed: tuple, added: tuple) -> None:
    """Keep the write's delta with its new version (after commit, in the writer's request). Web
    processes holding the previous version arranged apply it in place (`cube_for`); the new version's
    whole cube is derived from the previous one and the delta later, off the request (`_cube`, by the
    worker's `warm_facet_cube` queued here, or by the first process that needs it): at 250k, fetching,
    re-counting and storing the 6.5 MB cube took ~170 ms of every upload. With None (an incomplete
    delta) or no version before, the writer counts the new version now instead.
    `removed` and `added`: (entity rows, tag rows), each a list of rows or a Counter of them."""
    if previous in (None, UNVERSIONED):
        _cube(current)
        return
    deltas = []
    for minus, plus in zip(removed, added, strict=True):
        delta = Counter(plus)
        delta.subtract(Counter(minus))
        deltas.append([(combo, n) for combo, n in delta.items() if n])
    cache.set(_delta_key(current), (previous, *deltas), CACHE_SECONDS)
    if cache.add(WARM_QUEUED_KEY, 1, WARM_QUEUED_SECONDS):  # one queued at a time, however many writes
        from celery import current_app

        try:
            current_app.send_task("catalog.tasks.warm_facet_cube")  # by name: tasks.py imports this module
        except Exception:  # a broker outage must not fail a write that committed: readers roll it instead
            cache.delete(WARM_QUEUED_KEY)
            log.exception("could not queue the facet cube's roll-forward")


def _cube(current: int) -> tuple[list[tuple], list[tuple]]:
    """A version's cube, from the shared cache, rolled forward from an earlier cached cube by the
    deltas since (`_rolled`), or counted; then cached. The unversioned catalog is counted every time:
    its entities were not written by the services (fixtures, a restore without the state row), so a
    cube cached for it could be another catalog's."""
    if current == UNVERSIONED:
        return _counted()
    key = _key(current)
    cached = cache.get(key)
    if cached is None:
        cached = _rolled(current) or _counted()
        cache.set(key, cached, CACHE_SECONDS)
    return cached


def _counted() -> tuple[list[tuple], list[tuple]]:
    rows = list(Entity.objects.order_by().values_list(*CUBE_COLUMNS).annotate(n=Count("id")))
    tags = list(EntityTag.objects.order_by().values_list(*TAG_COLUMNS).annotate(n=Count("id")))
    return rows, tags


def _rolled(current: int) -> tuple[list[tuple], list[tuple]] | None:
    """The cube of `current` from the nearest earlier version whose cube is cached and the deltas of
    the writes since; None when the chain is broken or longer than MAX_DELTAS."""
    found = _walk(current, lambda version: version != current and cache.has_key(_key(version)))
    base = None if found is None else cache.get(_key(found[0]))
    if base is None:  # no chain, or the base expired meanwhile
        return None
    result = []
    for i, rows in enumerate(base):
        counter = Counter({row[:-1]: row[-1] for row in rows})
        for delta in found[1]:
            for combo, n in delta[i]:
                counter[combo] += n
        result.append([(*combo, n) for combo, n in counter.items() if n > 0])
    return tuple(result)


def _walk(version: int, until) -> tuple[int, list[list]] | None:
    """Follow the writes' deltas back from `version` until `until(version)` holds: (that version, the
    deltas since, oldest first); None when a delta is missing or more than MAX_DELTAS are needed."""
    chain = []
    while not until(version):
        found = cache.get(_delta_key(version)) if len(chain) < MAX_DELTAS else None
        if found is None:
            return None
        version, *delta = found
        chain.append(delta)
    return version, chain[::-1]


def top_values(counter: Counter, limit: int = 30) -> list[dict]:
    """A facet's values, most frequent first (then by value), as the page and the API show them."""
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"value": value, "count": count} for value, count in ordered]


def warm() -> int:
    """Make sure the current version's cube is in the shared cache (rolled forward from the last
    one, or counted), for another CACHE_SECONDS; returns its entity rows."""
    cache.delete(WARM_QUEUED_KEY)  # a write from now on queues the next one
    current = version()
    rows = _cube(current)[0]
    cache.touch(_key(current), CACHE_SECONDS)
    return len(rows)


def owner_value(value: str) -> str:
    value = value.strip().lower()
    if ":" not in value:
        value = f"group:{value}"
    kind, rest = value.split(":", 1)
    return f"{kind}:{rest}" if "/" in rest else f"{kind}:default/{rest}"


def simple_filters(params) -> dict[int, set[str]] | None:
    """The cube-answerable filters of a request, or None when some other filter is present."""
    out: dict[int, set[str]] = {}
    for key in params:
        values = [v for v in params.getlist(key) if v.strip()]
        if key in IGNORED_PARAMS or not values:
            continue
        wanted = {v.strip().lower() for raw in values for v in raw.split(",") if v.strip()}
        if key == "tag" and len(wanted) == 1:  # several tags must all be present: counted live
            out[TAG] = wanted
            continue
        if key not in SIMPLE:
            return None
        if key == "owner":
            wanted = {owner_value(v) for v in wanted}
        out[SIMPLE[key]] = wanted
    return out


class _Table:
    """Cube combos — (kind, type, lifecycle, owner, namespace[, tag], n) — arranged for requests:
    internal ones are summed once and indexed by each column, so a filtered request visits only
    the rows of its most selective filter, and their sums are remembered per filter set (they are
    the same for every user); private ones are kept per owner team."""

    def __init__(self, combos: list[tuple], width: int):
        self.width = width  # the columns before the count
        self.public: list[tuple] = []
        self.private: dict[int | None, list[tuple]] = defaultdict(list)
        for values, visibility, team, n in combos:
            if visibility == "internal":
                self.public.append((*values, n))
            else:
                self.private[team].append((*values, n))
        self.index: dict[int, dict[str, list[int]]] = {i: defaultdict(list) for i in range(width)}
        self.position: dict[tuple, int] = {}
        for position, combo in enumerate(self.public):
            self._index(combo, position)
        self._memo: dict[tuple, tuple[int, list[Counter]]] = {}

    def _index(self, combo: tuple, position: int) -> None:
        self.position[combo[:-1]] = position
        for i in range(self.width):
            self.index[i][combo[i].lower()].append(position)

    def apply(self, changes: list[tuple]) -> None:
        """Add a write's delta — (values, visibility, team, change in count) — in place. A combo that
        drops to zero stays in the public list with n = 0 (sums skip it); a new one is appended. The
        remembered sums take the same delta: summing a filter set afresh costs up to 0.1 s at 250k,
        and every process would pay it for every filter set after every write."""
        public = []
        for values, visibility, team, change in changes:
            if visibility == "internal":
                position = self.position.get(values)
                if position is None:
                    position = len(self.public)
                    self.public.append((*values, 0))
                    self._index(self.public[position], position)
                self.public[position] = (*values, self.public[position][-1] + change)
                public.append((values, change))
            else:
                combos = self.private[team]
                counts = Counter({combo[:-1]: combo[-1] for combo in combos})
                counts[values] += change
                combos[:] = [(*combo, n) for combo, n in counts.items() if n > 0]
        for key, (total, per_column) in self._memo.items():
            filters = dict(key)
            for values, change in public:
                if self._matches(values, filters):
                    total += change
                    for i in range(self.width):
                        if values[i]:
                            per_column[i][values[i]] += change
                            if per_column[i][values[i]] <= 0:
                                del per_column[i][values[i]]
            self._memo[key] = (total, per_column)

    @staticmethod
    def _matches(combo: tuple, filters: dict[int, set[str]]) -> bool:
        return all(combo[i].lower() in wanted for i, wanted in filters.items())

    def _sum(self, combos, filters: dict[int, set[str]], total: int, per_column: list[Counter]) -> int:
        for combo in combos:
            if filters and not self._matches(combo, filters):
                continue
            n = combo[-1]
            if n <= 0:  # a combo emptied by a write applied in place (`apply`)
                continue
            total += n
            for i in range(self.width):
                if combo[i]:
                    per_column[i][combo[i]] += n
        return total

    def _public(self, filters: dict[int, set[str]]) -> tuple[int, list[Counter]]:
        key = tuple(sorted((i, tuple(sorted(v))) for i, v in filters.items()))
        found = self._memo.get(key)
        if found is None:
            if filters:
                best = min(filters, key=lambda i: sum(len(self.index[i].get(v, ())) for v in filters[i]))
                combos = [self.public[p] for p in sorted(p for v in filters[best] for p in self.index[best].get(v, ()))]
            else:
                combos = self.public
            per_column = [Counter() for _ in range(self.width)]
            total = self._sum(combos, filters, 0, per_column)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = (total, per_column)
        return found

    def public_total(self) -> int:
        return self._public({})[0]

    def public_counts(self, value: str, column: int = TAG) -> int:
        return self._public({})[1][column].get(value, 0)

    def counts(self, teams, filters: dict[int, set[str]]) -> tuple[int, list[Counter]]:
        """Total and per-column counts of what matches `filters` and the user sees (`teams`: the
        owner teams of private entities visible; None for all)."""
        total, public = self._public(filters)
        per_column = [Counter(counter) for counter in public]
        for team, combos in self.private.items():
            if teams is None or team in teams:
                total = self._sum(combos, filters, total, per_column)
        return total, per_column


class Cube:
    """A catalog version's cube: entity rows, and tag rows (one per tag of an entity)."""

    def __init__(self, rows: list[tuple], tag_rows: list[tuple]):
        self.entities = _Table([self._entity(row[:-1], row[-1]) for row in rows], width=5)
        self.tags = _Table([self._tag(row[:-1], row[-1]) for row in tag_rows], width=6)

    @staticmethod
    def _entity(row: tuple, n: int) -> tuple:  # a CUBE_COLUMNS row
        return tuple(v or "" for v in row[:5]), row[5], row[6], n

    @staticmethod
    def _tag(row: tuple, n: int) -> tuple:  # a TAG_COLUMNS row: the tag first
        return tuple(v or "" for v in (*row[1:6], row[0])), row[6], row[7], n

    def apply(self, entity_delta: list[tuple], tag_delta: list[tuple]) -> None:
        """A write's delta as `roll_forward` stored it: ([(row, change)], [(tag row, change)])."""
        self.entities.apply([self._entity(row, n) for row, n in entity_delta])
        self.tags.apply([self._tag(row, n) for row, n in tag_delta])

    def counts(self, teams, filters: dict[int, set[str]], names: list[str]) -> tuple[int, dict]:
        """(total, {facet: Counter}); the tag facet is None when it must be counted live."""
        if TAG in filters:  # one tag: each matching entity has exactly one row of that tag
            total, per_column = self.tags.counts(teams, filters)
            tag_counts = None
        else:
            total, per_column = self.entities.counts(teams, filters)
            tag_counts = self.tags.counts(teams, filters)[1][TAG] if "tag" in names else None
        per_facet: dict[str, Counter | None] = {name: per_column[i] for name, i in SIMPLE.items() if name in names}
        if "tag" in names:
            per_facet["tag"] = tag_counts
        return total, per_facet


_LOCAL: dict[str, object] = {"version": None, "cube": None}
# Threaded servers (runserver, the browser tests' live server) share _LOCAL: the cube changes in place.
_LOCK = threading.Lock()


def cube_for(current: int) -> Cube:
    """This process's arranged cube of a version. A process that holds an earlier version arranged
    catches up by the deltas of the writes since (`roll_forward` keeps each one with its new version):
    re-arranging a 250k catalog's cube costs ~0.4 s per process and write, a delta a few rows. Otherwise
    (no arranged cube, a delta missing or too many) it is built from the shared cache. Hold _LOCK."""
    have, cube = _LOCAL["version"], _LOCAL["cube"]
    if have == current and current != UNVERSIONED:
        return cube  # type: ignore[return-value]
    chain = _deltas(have, current) if cube is not None else None
    if chain is not None:
        for entity_delta, tag_delta in chain:
            cube.apply(entity_delta, tag_delta)  # type: ignore[union-attr]
    else:
        cube = Cube(*_cube(current))
    _LOCAL["cube"], _LOCAL["version"] = cube, current
    return cube  # type: ignore[return-value]


def _deltas(have, want: int) -> list | None:
    """The deltas that lead from version `have` to `want`, oldest first; None when the chain is broken."""
    if have in (None, UNVERSIONED) or want == UNVERSIONED:
        return None
    found = _walk(want, lambda version: version == have)
    return None if found is None else found[1]


def tag_share(tag: str) -> float:
    """The share of internal entities that carry `tag` (for choosing a query plan)."""
    current = version()
    with _LOCK:
        cube = cube_for(current)
        total = cube.entities.public_total()
        return cube.tags.public_counts(tag) / total if total else 0.0


def counts(user, filters: dict[int, set[str]], facet_names: list[str],
           current: int | None = None) -> tuple[int, dict[str, list[dict]]]:
    """(total, facets) for the user's visible entities matching `filters`, from the cube of the
    `current` catalog version (read when not given)."""
    teams = None if permissions.is_platform_admin(user) else set(permissions.team_ids(user))
    current = version() if current is None else current
    with _LOCK:
        total, per_facet = cube_for(current).counts(teams, filters, facet_names)
    facets = {}
    for name in facet_names:
        counter = per_facet.get(name, Counter())
        if counter is not None:
            facets[name] = top_values(counter)
    return total, facets
