"""The append-only, hash-chained audit trail.

Every state change made through a service writes one event in the same transaction. Each
event stores the SHA-256 of the previous event and its own hash over a canonical JSON
serialisation, so a changed or removed row breaks the chain at a named place.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from .request_context import get_request_id

GENESIS = "0" * 64


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
):
    """Append one event. Must be called inside the transaction that makes the change."""
    from .models_audit import AuditChainHead, AuditEvent

    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1, defaults={"last_hash": GENESIS})
        actor_name = actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else "system"
        payload = {
            "seq": head.seq + 1,
            "at": timezone.now().isoformat(timespec="microseconds"),
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


def verify_chain(events) -> tuple[bool, str, int]:
    """Walk events in seq order. Returns (ok, message, count)."""
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
        if (payload["actor"], payload["action"], payload["target"]) != (event.actor, event.action, event.target):
            return False, f"event #{event.seq}: indexed columns differ from the hashed payload", count
        previous = event.hash
        expected_seq += 1
        count += 1
    return True, f"{count} events verified; head {previous}", count
