"""Feedback settings with their defaults. Read at call time, never at import time."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Longest comment or answer (characters) and title accepted; longer ones are refused with a message.
    "MAX_COMMENT_CHARS": 4000,
    "MAX_TITLE_CHARS": 200,
    # The roadmap's score: votes × VOTE_WEIGHT + active users of the asking teams over ACTIVE_DAYS days.
    "VOTE_WEIGHT": 5,
    "ACTIVE_DAYS": 30,
    # Items the roadmap ranks at most (the most voted first are scored; the page shows them all).
    "ROADMAP_LIMIT": 200,
}


def get(name: str) -> Any:
    return getattr(settings, f"PLINTH_FEEDBACK_{name}", DEFAULTS[name])


def platform_team_name() -> str:
    return getattr(settings, "PLINTH_PLATFORM_TEAM", "platform")
