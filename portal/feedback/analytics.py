"""Feedback as an analytics event, when the insights capture module is installed (it lives in
`portal.insights.capture`; this app does not depend on it). Capturing never fails a feedback write."""

from __future__ import annotations

import logging

log = logging.getLogger("plinth.feedback")


def feedback_given(item, *, created: bool) -> None:
    try:
        from portal.insights import capture
    except ImportError:
        return
    record = getattr(capture, "record", None)
    if record is None:
        return
    try:
        record("feedback", user=item.author, team=item.owner_team, subject=(item.target_key or "platform")[:300],
               data={"kind": item.kind, "useful": item.useful, "created": created})
    except Exception:  # analytics must never cost a user their feedback
        log.warning("feedback analytics event not recorded", exc_info=True)
