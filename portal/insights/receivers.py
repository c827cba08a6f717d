"""What the apps below say happened (`portal.core.usage`), and sign-ins from Django's own signal: both
become captured events (the apps know nothing of analytics)."""

from __future__ import annotations

from . import capture
from .models import Client, EventType


def signed_in(sender, request, user, **kwargs) -> None:
    capture.record(EventType.SIGN_IN, user=user, client=Client.BROWSER)


def usage_happened(sender, type, signal=None, **details) -> None:  # noqa: A002
    capture.record(type, **details)
