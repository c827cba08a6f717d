"""The append-only, hash-chained audit trail.

Every state change made through a service writes one event in the same transaction. Each
event stores the SHA-256 of the previous event and its own hash over a canonical JSON
serialisation, so a changed or removed row breaks the chain at a named place.

The database refuses UPDATE and DELETE on the event table (triggers, migration core 0002). On
SQLite the DELETE trigger asks `plinth_audit_unlocked()`, a function this module registers on
every Django connection; it answers 1 only inside `maintenance()`, which `manage.py flush` (the
test suite's teardown) uses. A connection without the function (the sqlite3 shell) is refused.
On PostgreSQL, TRUNCATE (what flush uses there) is a statement, not a row change, and passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.backends.signals import connection_created
from django.utils import timezone

from .request_context import get_request_id

GENESIS = "0" * 64


def stored_time(moment: datetime) -> str:
    """`moment` as an event's `at` (and its `created_at` column) holds it: UTC, to the microsecond,
    `2026-12-07T10:12:26.000000+00:00`. Text in this one format sorts as time does, so the audit
    filters compare a moment converted with this; OverflowError when UTC moves it past year 1 or 9999."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(payload: dict[str, Any], previous: str) -> str:
    return hashlib.sha256((previous + canonical(payload)).encode()).hexdigest()


def audit_record(
    *,
    actor,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    outcome: str = "success",
    remote_addr: str | None = None,
    request_id: str | None = None,
    policy_hash: str = "",
    approval_request_id: int | None = None,
    actor_label: str = "system",
):
    """Append one event. Must be called inside the transaction that makes the change.

    `actor_label` names an actor that is not a signed-in user ("anonymous" for a failed sign-in)."""
    from .models_audit import AuditChainHead, AuditEvent

    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1, defaults={"last_hash": GENESIS})
        actor_name = actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else actor_label
        payload = {
            "seq": head.seq + 1,
            "at": stored_time(timezone.now()),
            "actor": actor_name,
            "action": action,
            "target": target,
            "before": before,
            "after": after,
            "outcome": outcome,
            "remote_addr": remote_addr,
            "request_id": request_id or get_request_id(),
            "policy_hash": policy_hash,
            "approval_request_id": approval_request_id,
        }
        digest = event_hash(payload, head.last_hash)
        event = AuditEvent.objects.create(
            seq=payload["seq"], payload=canonical(payload), prev_hash=head.last_hash, hash=digest,
            actor=actor_name, action=action, target=target, created_at=payload["at"],
        )
        head.seq = payload["seq"]
        head.last_hash = digest
        head.save(update_fields=["seq", "last_hash"])
    return event


# The columns copied out of the hashed payload for filtering and display (column, payload key). The
# page, its CSV export, the API and the filters read these, so verify checks each against the payload.
INDEXED_COLUMNS = (("created_at", "at"), ("actor", "actor"), ("action", "action"), ("target", "target"))


def verify_chain(events, head=None) -> tuple[bool, str, int]:
    """Walk events in seq order. Returns (ok, message, count). With the chain head, a missing tail
    (the last events deleted) is found too."""
    previous = GENESIS
    expected_seq = 1
    count = 0
    for event in events:
        if event.seq != expected_seq:
            return False, f"event #{expected_seq} is missing (next present is #{event.seq})", count
        if event.prev_hash != previous:
            return False, f"event #{event.seq}: previous-hash link broken", count
        payload = json.loads(event.payload)
        if event_hash(payload, previous) != event.hash or payload.get("seq") != event.seq:
            return False, f"event #{event.seq}: content does not match its hash", count
        differ = [column for column, key in INDEXED_COLUMNS if getattr(event, column) != payload.get(key)]
        if differ:
            columns = f"the {', '.join(differ)} column{'s differ' if len(differ) > 1 else ' differs'}"
            return False, f"event #{event.seq}: {columns} from the hashed payload", count
        previous = event.hash
        expected_seq += 1
        count += 1
    if head is not None and (head.seq, head.last_hash) != (count, previous):
        if head.seq > count:
            return False, f"event #{count + 1} is missing (the chain head is at #{head.seq})", count
        return False, f"the chain head (#{head.seq}) does not match the last event (#{count})", count
    return True, f"{count} events verified; head {previous}", count


def verify_database() -> tuple[bool, str, int]:
    """Verify the stored chain against its head, streaming the events."""
    from .models_audit import AuditChainHead, AuditEvent

    head = AuditChainHead.objects.filter(pk=1).first()
    events = AuditEvent.objects.order_by("seq").only(
        "seq", "payload", "prev_hash", "hash", *(column for column, _ in INDEXED_COLUMNS)).iterator(chunk_size=2000)
    if head is None:
        head = AuditChainHead(seq=0, last_hash=GENESIS)
    return verify_chain(events, head)


def chain_head() -> dict:
    from .models_audit import AuditChainHead

    head = AuditChainHead.objects.filter(pk=1).first()
    return {"seq": head.seq if head else 0, "hash": head.last_hash if head else GENESIS}


def export_document(events, filters: dict[str, str] | None = None) -> dict:
    """The JSON export of `events` (a queryset; the audit page's and `audit export`'s) with what
    `audit verify --file` checks it against: the chain head, read first (events appended while
    exporting are left out, so a complete export ends at its head), and the scope. Without `filters`
    the export is the whole chain (`complete`) and any missing event is found offline; with them it
    records the filter, and verify can vouch only for the events it holds."""
    head = chain_head()
    rows = [
        {"seq": e.seq, "payload": e.payload, "prevHash": e.prev_hash, "hash": e.hash}
        for e in events.filter(seq__lte=head["seq"]).order_by("seq").iterator(chunk_size=2000)
    ]
    return {
        "chainHead": head,
        "exportedAt": timezone.now().isoformat(),
        "scope": {
            "complete": not filters,
            "filter": dict(filters or {}),
            "firstSeq": rows[0]["seq"] if rows else None,
            "lastSeq": rows[-1]["seq"] if rows else None,
            "count": len(rows),
        },
        "events": rows,
    }


# -- append-only guard ----------------------------------------------------------------------------

_maintenance = 0
_maintenance_lock = threading.Lock()
SQLITE_GUARD_FUNCTION = "plinth_audit_unlocked"


@contextlib.contextmanager
def maintenance() -> Iterator[None]:
    """Allow deleting audit rows (whole-database wipes such as `manage.py flush`) on SQLite."""
    global _maintenance
    with _maintenance_lock:
        _maintenance += 1
    try:
        yield
    finally:
        with _maintenance_lock:
            _maintenance -= 1


def _unlocked() -> int:
    return 1 if _maintenance > 0 else 0


def _register_sqlite_function(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_GUARD_FUNCTION, 0, _unlocked)


def install_sqlite_guard() -> None:
    """Register the guard function on every new SQLite connection (called from an AppConfig.ready)."""
    connection_created.connect(_register_sqlite_function, dispatch_uid="plinth-audit-sqlite-guard")
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and conn.connection is not None:
            _register_sqlite_function(None, conn)


GUARD_TRIGGERS = {
    "sqlite": ["core_auditevent_no_update", "core_auditevent_no_delete", "core_auditchainhead_forward_only",
               "core_auditchainhead_no_delete"],
    "postgresql": ["core_auditevent_append_only", "core_auditchainhead_forward_only"],
}


def guard_installed(connection) -> list[str]:
    """Names of the append-only triggers missing on this database (empty when all are in place)."""
    expected = GUARD_TRIGGERS.get(connection.vendor, [])
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            return []
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in expected if name not in present]
