"""Single sign-on attempts left behind: the state, nonce and PKCE verifier of an attempt whose answer
never comes back are forgotten after their lifetime (the anonymous session they live in expires with them
and the beat deletes it), and one browser holds a bounded number of pending attempts. Real provider and
live server (tests/accounts/conftest.py), real database sessions."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from portal.accounts import oidc, tasks
from tests.accounts.test_oidc import Flow, _session

pytestmark = pytest.mark.django_db(transaction=True)


def _start(flow: Flow) -> str:
    """One attempt, stopped before the provider: the state the portal sent."""
    answer = flow.http.get(f"{flow.base}/accounts/oidc/start/", allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    return parse_qs(urlsplit(answer.headers["Location"]).query)["state"][0]


def test_an_abandoned_attempt_is_gone_after_its_lifetime_and_a_fresh_one_completes(live_server, sso, settings):
    settings.PLINTH_OIDC_STATE_LIFETIME_SECONDS = 2
    abandoned = Flow(live_server)
    _start(abandoned)
    key = abandoned.http.cookies["sessionid"]
    assert Session.objects.filter(session_key=key).exists()
    time.sleep(3)
    tasks.clear_expired_sessions()
    assert not Session.objects.filter(session_key=key).exists(), "the abandoned attempt's session is deleted"
    entry = settings.CELERY_BEAT_SCHEDULE["accounts-clear-expired-sessions"]
    assert entry == {"task": tasks.clear_expired_sessions.name, "schedule": 3600.0}, "the beat runs it hourly"

    settings.PLINTH_OIDC_STATE_LIFETIME_SECONDS = 3600
    fresh = Flow(live_server)
    callback = fresh.log_in_at_provider("ada")
    tasks.clear_expired_sessions()  # a pending attempt within its lifetime is kept
    answer = fresh.callback(callback)
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:500]
    signed_in = Session.objects.get(session_key=fresh.http.cookies["sessionid"])
    assert signed_in.expire_date > timezone.now() + timedelta(days=1), "the signed-in session is not cut short"
    assert not [k for k in _session(fresh) if k.startswith(oidc.STATE_PREFIX)]


def test_an_answer_after_the_attempts_lifetime_is_refused(live_server, sso, settings):
    settings.PLINTH_OIDC_STATE_LIFETIME_SECONDS = 2
    flow = Flow(live_server)
    callback = flow.log_in_at_provider("ada")
    time.sleep(3)
    answer = flow.callback(callback)
    assert answer.status_code == 400, answer.text[:500]
    assert "Start again from the sign-in page" in answer.text
    assert "_auth_user_id" not in _session(flow)


def test_one_browser_holds_a_bounded_number_of_pending_attempts(live_server, sso):
    flow = Flow(live_server)
    states = [_start(flow) for _ in range(20)]
    held = {k.removeprefix(oidc.STATE_PREFIX) for k in _session(flow) if k.startswith(oidc.STATE_PREFIX)}
    assert held == set(states[-oidc.MAX_PENDING_ATTEMPTS:]), "the newest attempts are kept, the oldest dropped"
    answer = flow.sign_in("ada")  # and a new one still completes
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:500]


def test_an_expired_attempt_in_a_signed_in_session_is_refused_as_expired(live_server, sso):
    """A signed-in session (not cut short) can still carry an attempt past its lifetime: its answer is
    refused by the attempt's own expiry, which Authlib does not check."""
    flow = Flow(live_server)
    assert flow.sign_in("ada").status_code == 302
    start = flow.http.get(f"{flow.base}/accounts/oidc/start/", allow_redirects=False, timeout=10)
    callback = flow.follow_to_callback(start)  # the provider remembers ada: straight back
    state = parse_qs(urlsplit(callback).query)["state"][0]
    store = _store(flow)
    store[f"{oidc.STATE_PREFIX}{state}"]["exp"] = time.time() - 1  # written an hour ago
    store.save()
    answer = flow.callback(callback)
    assert answer.status_code == 400, answer.text[:500]
    assert "The sign-in took too long" in answer.text


def _store(flow: Flow):
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore(session_key=flow.http.cookies["sessionid"])
    store.load()
    return store
