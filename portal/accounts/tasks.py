"""Celery tasks of the accounts app (thin)."""

from __future__ import annotations

from importlib import import_module

from celery import shared_task
from django.conf import settings


@shared_task(name="portal.accounts.tasks.clear_expired_sessions", ignore_result=True)
def clear_expired_sessions() -> None:
    """Beat: delete expired sessions (Django's `clearsessions`, idempotent). An abandoned single sign-on
    attempt's anonymous session expires with the attempt (portal/accounts/oidc.py), so its state, nonce
    and PKCE verifier go with it."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
