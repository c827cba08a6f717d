"""Insights fixtures: a fresh capture buffer per test, flushed on demand."""

from __future__ import annotations

import pytest


@pytest.fixture
def capture_buffer(settings):
    """The in-process capture buffer, empty; `flush()` writes it (the suite runs no flusher thread)."""
    from portal.insights import capture

    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = None
    capture._state.pop("buffer", None)  # what earlier set-up recorded is not this test's
    buf = capture._buffer()
    yield buf
    capture._state.pop("buffer", None)
