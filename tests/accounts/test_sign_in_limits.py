"""Sign-in throttle per account and per client address, X-Forwarded-For handling, and the audit
events of signing in and out. Limits are set small here; the suite's defaults are generous."""

import json
import logging
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from portal.accounts.models import LoginFailure
from portal.core.models import AuditEvent
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
SECRET = "hunter2-not-the-password"


@pytest.fixture
def limits(settings):
    settings.PLINTH_LOGIN_MAX_FAILURES = 3
    settings.PLINTH_LOGIN_MAX_FAILURES_PER_ADDRESS = 5
    settings.PLINTH_LOGIN_WINDOW_SECONDS = 600
    settings.PLINTH_TRUSTED_PROXY_COUNT = 0
    return settings


def sign_in(client, username, password=SECRET, **headers):
    return client.post("/accounts/sign-in/", {"username": username, "password": password}, **headers)


def events(action):
    return [json.loads(e.payload) for e in AuditEvent.objects.filter(action=action).order_by("seq")]


def test_lock_per_address_spans_account_names_and_spares_other_addresses(client, limits):
    UserFactory(username="zed")
    for i in range(4):
        assert sign_in(client, f"guess{i}", REMOTE_ADDR="203.0.113.9").status_code == 401
    fifth = sign_in(client, "guess4", REMOTE_ADDR="203.0.113.9")
    assert fifth.status_code == 429
    body = fifth.content.decode()
    assert "Too many failed sign-ins for your network address. Try again in 10 minutes." in body
    assert 9 * 60 < int(fifth["Retry-After"]) <= 600
    # Even the right password of an untouched account is refused from that address ...
    assert sign_in(client, "zed", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429
    # ... and accepted from another one.
    assert sign_in(Client(), "zed", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 302


def test_forged_x_forwarded_for_does_not_reset_the_address_count(client, limits):
    """No trusted proxy: the header is ignored, whatever it says."""
    for i in range(5):
        sign_in(client, f"guess{i}", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    refused = sign_in(client, "other", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert refused.status_code == 429 and "network address" in refused.content.decode()
    assert set(LoginFailure.objects.values_list("remote_addr", flat=True)) == {"203.0.113.9"}


def test_behind_one_trusted_proxy_only_the_entry_it_appended_counts(client, limits):
    limits.PLINTH_TRUSTED_PROXY_COUNT = 1
    proxy = "10.1.1.1"
    for i in range(5):  # the client prepends a different forged hop every time
        sign_in(client, f"guess{i}", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.9")
    refused = sign_in(client, "other", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.9")
    assert refused.status_code == 429
    # Another client behind the same proxy is not locked; a header with too few hops falls back to
    # the proxy's own address rather than trusting what the client wrote.
    assert sign_in(client, "other", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 401
    assert sign_in(client, "other2", REMOTE_ADDR=proxy).status_code == 401
    assert set(LoginFailure.objects.values_list("remote_addr", flat=True)) == {"203.0.113.9", "198.51.100.7", proxy}


def test_ipv6_clients_are_counted_per_64_block(client, limits):
    for i in range(5):
        sign_in(client, f"guess{i}", REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}")
    assert sign_in(client, "other", REMOTE_ADDR="2001:db8:1:2:ffff::1").status_code == 429
    assert sign_in(client, "other", REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


def test_lock_ends_when_the_failures_leave_the_window(client, limits):
    limits.PLINTH_LOGIN_WINDOW_SECONDS = 1
    UserFactory(username="ann")
    for _ in range(3):
        sign_in(client, "ann")
    locked = sign_in(client, "ann", PASSWORD)
    assert locked.status_code == 429 and "Try again in 1 second." in locked.content.decode()
    time.sleep(int(locked["Retry-After"]) + 0.1)
    assert sign_in(client, "ann", PASSWORD).status_code == 302


def test_success_clears_the_accounts_failures_not_the_addresses(client, limits):
    UserFactory(username="mallory")
    for i in range(2):
        sign_in(client, f"victim{i}", REMOTE_ADDR="203.0.113.9")
        sign_in(client, "mallory", REMOTE_ADDR="203.0.113.9")
    assert sign_in(client, "mallory", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 302
    assert not LoginFailure.objects.filter(username="mallory").exists()
    # Signing in to one's own account does not buy more guesses at other accounts.
    assert LoginFailure.objects.filter(address_key="203.0.113.9").count() == 2


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_are_counted_before_any_finishes(limits):
    """Eight simultaneous wrong passwords for one account: exactly the limit is checked."""
    UserFactory(username="ann")
    barrier = threading.Barrier(8)
    statuses = []

    def guess():
        try:
            barrier.wait()
            statuses.append(sign_in(Client(), "ann").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401, 401] + [429] * 6
    assert LoginFailure.objects.filter(username="ann").count() == 3
    assert len(events("auth.sign-in")) == 3


def test_sign_in_events_are_audited_without_the_password(client, limits, caplog):
    caplog.set_level(logging.DEBUG)
    UserFactory(username="ann")
    for _ in range(3):
        sign_in(client, "Ann", SECRET, REMOTE_ADDR="203.0.113.9")
    limits.PLINTH_LOGIN_MAX_FAILURES = 10
    assert sign_in(client, "ann", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 302
    assert client.post("/accounts/sign-out/", REMOTE_ADDR="203.0.113.9").status_code == 302

    failures = [e for e in events("auth.sign-in") if e["outcome"] == "failure"]
    assert len(failures) == 3
    assert failures[0]["actor"] == "anonymous" and failures[0]["target"] == "user:ann"
    assert failures[0]["remote_addr"] == "203.0.113.9" and failures[0]["after"] == {"username": "ann"}
    [lockout] = events("auth.lockout")
    assert lockout["target"] == "user:ann" and lockout["after"]["scope"] == "account"
    assert lockout["after"]["failures"] == 3 and lockout["after"]["windowSeconds"] == 600
    [success] = [e for e in events("auth.sign-in") if e["outcome"] == "success"]
    assert success["actor"] == "ann" and success["remote_addr"] == "203.0.113.9"
    [sign_out] = events("auth.sign-out")
    assert sign_out["actor"] == "ann" and sign_out["target"] == "user:ann"

    stored = "".join(AuditEvent.objects.values_list("payload", flat=True))
    assert SECRET not in stored and PASSWORD not in stored
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert SECRET not in logged and PASSWORD not in logged


def test_an_address_lockout_is_audited_with_the_address(client, limits):
    for i in range(5):
        sign_in(client, f"guess{i}", REMOTE_ADDR="203.0.113.9")
    [lockout] = events("auth.lockout")
    assert lockout["target"] == "address:203.0.113.9" and lockout["after"]["scope"] == "address"


def test_audit_page_shows_auth_events(client, limits):
    sign_in(client, "nobody", REMOTE_ADDR="203.0.113.9")
    admin = UserFactory(username="root", is_superuser=True)
    client.force_login(admin)
    page = client.get("/reviews/audit/?action=auth.").content.decode()
    assert "auth.sign-in" in page and "user:nobody" in page


def test_the_admin_sign_in_goes_through_the_portal_page(client, limits):
    UserFactory(username="root", is_superuser=True, is_staff=True)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/accounts/sign-in/?next=%2Fadmin%2F"
    posted = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert posted.status_code == 302 and "_auth_user_id" not in client.session
    assert client.get("/admin/login/?next=https://evil.example.com/")["Location"].endswith("next=%2Fadmin%2F")
    client.force_login(UserFactory(username="plain"))
    assert client.get("/admin/", follow=True).status_code == 403
