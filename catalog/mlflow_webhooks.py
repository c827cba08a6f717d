"""MLflow webhook deliveries: signature, freshness and payload checks (no database access here).

MLflow 3 signs each delivery like Standard Webhooks: `X-MLflow-Signature: v1,<base64 HMAC-SHA256>` over
`<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<raw body>`, keyed with the webhook's secret as UTF-8
bytes (mlflow/webhooks/delivery.py). The view calls `verify` then `parse`; the service records the
delivery id, which is what refuses a replay inside the timestamp window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from portal.core.numbers import digits

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"

# Model registry events that change what the catalog shows. Prompt and budget events are not models.
EVENTS = frozenset({
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
})
# Unix seconds have 10 digits until 2286; a longer run is no timestamp (and `int` refuses 4,300+ digits).
STAMP_MAX_DIGITS = 12
# The one event whose model the catalog cannot know yet: the targeted sync creates its entity.
CREATES_MODEL = "registered_model.created"


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    model: str


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(*, secret: str, headers, body: bytes, tolerance: int, now: float | None = None) -> tuple[str, int]:
    """(delivery id, timestamp) of a delivery signed with `secret`, sent within `tolerance` seconds."""
    delivery_id, stamp, given = (headers.get(h, "").strip() for h in (DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    missing = [h for h, v in ((DELIVERY_HEADER, delivery_id), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, given)) if not v]
    if missing:
        raise Refused(401, f"missing header(s): {', '.join(missing)}")
    if len(delivery_id) > 100:
        raise Refused(401, f"{DELIVERY_HEADER} is longer than 100 characters")
    if not digits(stamp) or len(stamp) > STAMP_MAX_DIGITS:
        raise Refused(401, f"{TIMESTAMP_HEADER} must be Unix seconds (at most {STAMP_MAX_DIGITS} digits), "
                           f"got {stamp[:40]!r}{'…' if len(stamp) > 40 else ''}")
    expected = sign(secret, delivery_id, stamp, body)
    # Several space-separated signatures are allowed (a secret being rotated); one match suffices.
    if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in given.split()):
        raise Refused(401, f"{SIGNATURE_HEADER} does not match the body signed with the configured secret")
    skew = abs((now if now is not None else time.time()) - int(stamp))
    if skew > tolerance:
        raise Refused(401, f"{TIMESTAMP_HEADER} is {int(skew)} s away from the portal's clock "
                           f"(at most {tolerance} s accepted): a stale or replayed delivery")
    return delivery_id, int(stamp)


def parse(delivery_id: str, body: bytes) -> Delivery:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from exc
    except RecursionError:  # the decoder recurses once per level: `[[[[…` thousands deep (the API's rule)
        from portal.core.api import NESTED_MESSAGE  # not at import: DRF's settings import portal.core.api

        raise Refused(400, f"the body is not JSON the portal reads: {NESTED_MESSAGE}") from None
    if not isinstance(payload, dict):
        raise Refused(400, "the body must be a JSON object with entity, action and data")
    event = f"{payload.get('entity')}.{payload.get('action')}"
    if event not in EVENTS:
        raise Refused(400, f"event {event[:80]!r} is not one Plinth handles (accepted: {', '.join(sorted(EVENTS))})")
    data = payload.get("data")
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 300:
        raise Refused(400, "data.name must be the registered model's name (1-300 characters)")
    return Delivery(delivery_id=delivery_id, event=event, model=name)
