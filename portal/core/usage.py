"""Usage events, said where they happen and heard above: the apps `record()` what a person did (an entity
viewed, a search, a run finished); the insights app, which sits above them all, connects its capture to
`usage_event` in its ready(). So the catalog, search, techdocs, scaffolder and governance never import
the analytics built on them, and without a listener an event costs a function call.
"""

from __future__ import annotations

from django.db import models
from django.dispatch import Signal

usage_event = Signal()  # type, user, team, subject, value, client, data, at


class EventType(models.TextChoices):
    PAGE_VIEW = "page_view", "Page view"
    ENTITY_VIEW = "entity_view", "Entity view"
    DOCS_VIEW = "docs_view", "Docs page view"
    SEARCH = "search", "Search"
    SEARCH_CLICK = "search_click", "Search result clicked"
    TEMPLATE_RUN_STARTED = "template_run_started", "Template run started"
    TEMPLATE_RUN_SUCCEEDED = "template_run_succeeded", "Template run succeeded"
    TEMPLATE_RUN_FAILED = "template_run_failed", "Template run failed"
    # A run someone cancelled ended neither way: without it a funnel counts it started and never finished.
    TEMPLATE_RUN_CANCELLED = "template_run_cancelled", "Template run cancelled"
    REGISTRATION = "registration", "Entity registered"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    APPROVAL_DECIDED = "approval_decided", "Approval decision"
    APPROVAL_EXECUTED = "approval_executed", "Approval executed"
    API_CALL = "api_call", "API call"
    SIGN_IN = "sign_in", "Sign-in"
    FEEDBACK = "feedback", "Feedback given"


class Client(models.TextChoices):
    """Who made the request, from the user agent (API/SDK/CLI calls by client)."""

    BROWSER = "browser", "Browser"
    SDK = "sdk", "Python SDK"
    CLI = "cli", "plinth CLI"
    API = "api", "Other API client"
    SYSTEM = "system", "Plinth itself"  # events raised by workers (run finished, request executed)


def record(type: str, **details) -> None:  # noqa: A002 (the event's type, as everywhere in insights)
    """Say that something happened; the listener buffers it off the request path (no query here)."""
    usage_event.send(sender=None, type=type, **details)
