"""Sign-ins, from Django's own signal (the accounts app knows nothing of analytics)."""

from __future__ import annotations

from . import capture
from .models import Client, EventType


def signed_in(sender, request, user, **kwargs) -> None:
    capture.record(EventType.SIGN_IN, user=user, client=Client.BROWSER)
