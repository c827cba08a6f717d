"""Feedback as an analytics event, when the insights capture module is installed
(`portal.insights.capture.record`) and the event type `feedback` is declared in
`portal.insights.models.EventType`; until both are there this does nothing. This app does not depend
on either, and capturing never fails a feedback write."""

from __future__ import annotations

import logging

log = logging.getLogger("plinth.feedback")
EVENT = "feedback"


def feedback_given(item, *, created: bool) -> None:
    from portal.insights.models import EventType

    try:
        from portal.insights import capture
    except ImportError:
        return
    record = getattr(capture, "record", None)
    if record is None or EVENT not in EventType.values:
        return
    try:
        record(EVENT, user=item.author, team=item.owner_team, subject=(item.target_key or "platform")[:300],
               data={"kind": item.kind, "useful": item.useful, "created": created})
    except Exception:  # analytics must never cost a user their feedback
        log.warning("feedback analytics event not recorded", exc_info=True)
