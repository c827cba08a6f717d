"""Feedback as an analytics event (`feedback`, subject the target): the Insights capture buffers it
off the request path, and capturing never fails a feedback write."""

from __future__ import annotations

import logging

from portal.insights import capture
from portal.insights.models import EventType

log = logging.getLogger("plinth.feedback")


def feedback_given(item, *, created: bool) -> None:
    try:
        capture.record(EventType.FEEDBACK, user=item.author, team=item.owner_team,
                       subject=(item.target_key or "platform")[:300],
                       data={"kind": item.kind, "useful": item.useful, "created": created})
    except Exception:  # analytics must never cost a user their feedback
        log.warning("feedback analytics event not recorded", exc_info=True)
