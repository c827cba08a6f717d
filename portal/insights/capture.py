"""Capturing usage events without touching the database on the request path.

`record()` turns an event into a small dict and appends it to a buffer; nothing is written to the
database by the caller. Two buffers:

- `RedisBuffer` (REDIS_URL set, the production profile): RPUSH onto one list, drained in batches by
  the `insights.flush_events` beat task (LRANGE + bulk_create + LTRIM, under a lock) — every web and
  worker process shares it, and a web process restart loses nothing.
- `MemoryBuffer` (the embedded profile, no Redis): an in-process list drained by a daemon thread every
  few seconds or as soon as it holds `BATCH` events, and at exit. The thread has its own database
  connection, so the request's thread never waits for the insert.

When the buffer cannot take an event (Redis down, the in-process buffer full because the database is
unreachable), the event is dropped and counted: `dropped_total()` per process, and the same daemon
thread adds the counts to the `CaptureCounter` row named "dropped" (the health page and /metrics show
it). Capture never raises into the caller.

Per-user opt-out and the "team = the user's first team" default are applied when a batch is written
(`write_batch`): one query per batch instead of one per request.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from .models import Client, EventType

log = logging.getLogger("plinth.insights")

BATCH = 2000
MEMORY_LIMIT = 50_000  # events held in one process while the database is unreachable
FLUSH_SECONDS = 2.0
_TYPES = frozenset(EventType.values)
_CLIENTS = frozenset(Client.values)


def enabled() -> bool:
    return bool(getattr(settings, "PLINTH_ANALYTICS", True))


# --- clients, from the user agent -------------------------------------------------------------

def client_from_user_agent(user_agent: str, *, api: bool) -> str:
    """The SDK sends `plinth-sdk/<version>`, the CLI `plinth-cli/<version> plinth-sdk/<version>`
    (sdk/src/plinth_sdk/_http.py); browsers announce `Mozilla/`. Anything else calling the API
    (curl, a script with requests) is "api"."""
    ua = (user_agent or "").lower()
    if "plinth-cli/" in ua:
        return Client.CLI
    if "plinth-sdk/" in ua:
        return Client.SDK
    if ua.startswith("mozilla/") and not api:
        return Client.BROWSER
    if ua.startswith("mozilla/"):
        # A browser calling the API (htmx, Swagger UI) is still the browser.
        return Client.BROWSER
    return Client.API if api else Client.BROWSER


# --- the buffers -----------------------------------------------------------------------------

class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dropped = 0  # total in this process
        self.unsaved = 0  # not yet added to the CaptureCounter row

    def drop(self, n: int = 1) -> None:
        with self.lock:
            self.dropped += n
            self.unsaved += n
        from portal.core.metrics import ANALYTICS_DROPPED

        ANALYTICS_DROPPED.inc(n)

    def take_unsaved(self) -> int:
        with self.lock:
            n, self.unsaved = self.unsaved, 0
            return n

    def give_back(self, n: int) -> None:
        with self.lock:
            self.unsaved += n


COUNTERS = _Counters()


def dropped_total() -> int:
    """Events this process has dropped since it started."""
    return COUNTERS.dropped


class MemoryBuffer:
    def __init__(self) -> None:
        self.items: list[dict] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()

    def push(self, item: dict) -> bool:
        with self.lock:
            if len(self.items) >= MEMORY_LIMIT:
                return False
            self.items.append(item)
            full = len(self.items) >= BATCH
        if full:
            self.wake.set()
        return True

    def take(self, n: int = BATCH) -> list[dict]:
        with self.lock:
            batch, self.items = self.items[:n], self.items[n:]
            return batch

    def put_back(self, batch: list[dict]) -> None:
        with self.lock:
            room = MEMORY_LIMIT - len(self.items)
            kept = batch[:max(room, 0)]
            self.items[:0] = kept
        if len(kept) < len(batch):
            COUNTERS.drop(len(batch) - len(kept))

    def __len__(self) -> int:
        return len(self.items)


class RedisBuffer:
    def __init__(self, url: str, key: str) -> None:
        import redis

        self.key = key

        # Short timeouts: a Redis that does not answer must cost a request milliseconds, not seconds.
        self.client = redis.Redis.from_url(url, socket_timeout=0.05, socket_connect_timeout=0.05)
        self.down_until = 0.0

    def push(self, item: dict) -> bool:
        now = time.monotonic()
        if now < self.down_until:
            return False  # it failed a moment ago: do not pay the timeout on every request
        try:
            self.client.rpush(self.key, json.dumps(item, separators=(",", ":")))
        except Exception as exc:  # any Redis/network error: the event is dropped, never the request
            self.down_until = now + 1.0
            log.warning("analytics buffer unavailable, event dropped (%s)", exc.__class__.__name__)
            return False
        return True


def redis_key() -> str:
    return getattr(settings, "PLINTH_ANALYTICS_REDIS_KEY", "plinth:insights:events")


_state: dict[str, Any] = {}
_state_lock = threading.Lock()


def _buffer():
    buf = _state.get("buffer")
    if buf is not None:
        return buf
    with _state_lock:
        if "buffer" not in _state:
            url = getattr(settings, "PLINTH_ANALYTICS_REDIS_URL", None)
            _state["buffer"] = RedisBuffer(url, redis_key()) if url else MemoryBuffer()
            if getattr(settings, "PLINTH_ANALYTICS_FLUSH_THREAD", True):
                _start_flusher()
        return _state["buffer"]


def reset() -> None:
    """Forget the buffer (tests switch settings between Redis and memory). Flushes what is held."""
    with _state_lock:
        buf = _state.pop("buffer", None)
    if isinstance(buf, MemoryBuffer):
        _drain_memory(buf)


# --- record ----------------------------------------------------------------------------------

def _id(obj) -> int | None:
    if obj is None:
        return None
    if isinstance(obj, int):
        return obj
    if getattr(obj, "is_authenticated", True) is False:
        return None
    return getattr(obj, "pk", None)


def record(type: str, *, user=None, team=None, subject: str = "", value: float | None = None,  # noqa: A002
           client: str | None = None, data: dict | None = None, at: datetime | None = None) -> None:
    """Capture one event. Costs no database query; never raises (except for an unknown `type`, a
    programming error). Buffered at once, not at commit: services call this after their writes, as
    their last step, so a rollback after it is the rare failure of the commit itself."""
    if not enabled():
        return
    try:
        if type not in _TYPES:
            raise ValueError(f"unknown analytics event type {type!r}")
        item = {
            "t": type,
            "at": (at or datetime.now(UTC)).isoformat(),
            "u": _id(user),
            "tm": _id(team),
            "s": str(subject or "")[:300],
            "v": None if value is None else float(value),
            "c": client if client in _CLIENTS else Client.BROWSER,
            "d": data or {},
        }
    except ValueError:
        raise  # a programming error in the caller, not an outage
    except Exception:  # a value that does not serialise: drop it, the page still renders
        log.exception("analytics event not captured")
        COUNTERS.drop()
        return
    _push(item)


def _push(item: dict) -> None:
    try:
        ok = _buffer().push(item)
    except Exception:
        log.exception("analytics buffer failed")
        ok = False
    if not ok:
        COUNTERS.drop()


# --- writing batches -------------------------------------------------------------------------

def write_batch(items: list[dict]) -> int:
    """Insert buffered events: opted-out users' events lose their user (team counts keep them), and an
    event without a team takes its user's first team. A user or team deleted while its events were
    buffered is dropped from them, as Event's on_delete=SET_NULL does to stored events: otherwise the
    batch's foreign keys fail at commit, the whole batch (everyone's events) is kept for the next round
    and fails again until the buffer's bound drops it. Returns how many rows were written."""
    from portal.accounts.models import Membership

    from .models import Event

    if not items:
        return 0
    user_ids = {i["u"] for i in items if i.get("u")}
    live_users, opted_out, live_teams = _live_ids(user_ids, {i["tm"] for i in items if i.get("tm")})
    first_team: dict[int, int] = {}
    needs_team = {i["u"] for i in items if i.get("u") in live_users and not i.get("tm")}
    if needs_team:
        for user_id, team_id in (Membership.objects.filter(user_id__in=needs_team)
                                 .order_by("user_id", "created_at", "id").values_list("user_id", "team_id")):
            first_team.setdefault(user_id, team_id)
    rows = []
    for i in items:
        user_id = i.get("u") if i.get("u") in live_users else None
        team_id = (i.get("tm") if i.get("tm") in live_teams else None) if i.get("tm") else first_team.get(user_id)
        rows.append(Event(
            occurred_at=datetime.fromisoformat(i["at"]),
            type=i["t"],
            user_id=None if user_id in opted_out else user_id,
            team_id=team_id,
            subject=i.get("s", ""),
            client=i.get("c") or Client.BROWSER,
            value=i.get("v"),
            data=i.get("d") or {},
        ))
    Event.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _live_ids(user_ids: set[int], team_ids: set[int]) -> tuple[set[int], set[int], set[int]]:
    """Of a batch's users and teams, those that still exist, and the users who opted out: one query
    (users UNION ALL teams). A user or team deleted after this check fails the insert as before; the
    batch is kept and the next round's check leaves it out."""
    from django.contrib.auth import get_user_model
    from django.db.models import BooleanField, CharField, Exists, OuterRef, Value

    from portal.accounts.models import Team

    from .models import AnalyticsOptOut

    parts = []
    if user_ids:
        parts.append(get_user_model().objects.filter(pk__in=user_ids).annotate(
            kind=Value("u", output_field=CharField()),
            out=Exists(AnalyticsOptOut.objects.filter(user_id=OuterRef("pk")))).order_by().values_list("kind", "pk", "out"))
    if team_ids:
        parts.append(Team.objects.filter(pk__in=team_ids).annotate(
            kind=Value("t", output_field=CharField()),
            out=Value(False, output_field=BooleanField())).order_by().values_list("kind", "pk", "out"))
    users: set[int] = set()
    opted_out: set[int] = set()
    teams: set[int] = set()
    if parts:
        query = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        for kind, pk, out in query:
            if kind == "t":
                teams.add(pk)
                continue
            users.add(pk)
            if out:
                opted_out.add(pk)
    return users, opted_out, teams


def _save_dropped() -> None:
    n = COUNTERS.take_unsaved()
    if not n:
        return
    try:
        from django.db.models import F

        from .models import CaptureCounter

        updated = CaptureCounter.objects.filter(name="dropped").update(value=F("value") + n)
        if not updated:
            CaptureCounter.objects.get_or_create(name="dropped", defaults={"value": 0})
            CaptureCounter.objects.filter(name="dropped").update(value=F("value") + n)
    except Exception:
        COUNTERS.give_back(n)


def _drain_memory(buf: MemoryBuffer) -> int:
    written = 0
    while True:
        batch = buf.take()
        if not batch:
            return written
        try:
            written += write_batch(batch)
        except Exception as exc:  # database unreachable: keep them for the next round (bounded)
            log.warning("analytics flush failed (%s); %d events kept", exc.__class__.__name__, len(batch))
            buf.put_back(batch)
            return written


def flush_now() -> int:
    """Write what this process holds (memory buffer) and the dropped count. Used by the flusher
    thread, at exit, and by tests and the bench; the Redis buffer is drained by tasks.flush_events."""
    buf = _state.get("buffer")
    written = _drain_memory(buf) if isinstance(buf, MemoryBuffer) else 0
    _save_dropped()
    return written


def _flusher() -> None:
    from django.db import close_old_connections

    while True:
        buf = _state.get("buffer")
        if isinstance(buf, MemoryBuffer):
            buf.wake.wait(FLUSH_SECONDS)
            buf.wake.clear()
        else:
            time.sleep(FLUSH_SECONDS * 5)
        try:
            close_old_connections()
            flush_now()
        except Exception:
            log.exception("analytics flusher")


def _start_flusher() -> None:
    if _state.get("thread"):
        return
    thread = threading.Thread(target=_flusher, name="plinth-insights-flush", daemon=True)
    thread.start()
    _state["thread"] = thread


def _after_fork() -> None:
    # A forked child (a Celery pool process, a gunicorn worker) has no flusher thread: start afresh.
    _state.clear()
    COUNTERS.__init__()


os.register_at_fork(after_in_child=_after_fork)


@atexit.register
def _at_exit() -> None:
    if not _state.get("thread"):
        return  # no flusher in this process (the test suite flushes explicitly)
    try:
        flush_now()
    except Exception:  # the interpreter is going away; nothing useful to do
        log.debug("analytics: final flush failed", exc_info=True)
