"""Sign-in: generic failures, a per-account throttle, CSRF, safe redirects."""

import pytest
from django.test import Client

from portal.accounts.models import LoginFailure
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
GENERIC = "Sign-in failed"


def test_sign_in_reaches_home(client):
    UserFactory(username="ann")
    response = client.post("/accounts/sign-in/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_pages_require_sign_in(client):
    response = client.get("/catalog/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/sign-in/?next=/catalog/")


@pytest.mark.parametrize("username,password", [("ann", "wrong"), ("nobody", "whatever")])
def test_wrong_password_and_unknown_user_look_the_same(client, username, password):
    UserFactory(username="ann")
    response = client.post("/accounts/sign-in/", {"username": username, "password": password})
    assert response.status_code == 401
    assert GENERIC in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_account_is_throttled_after_repeated_failures(client, settings):
    settings.PLINTH_LOGIN_MAX_FAILURES = 3
    UserFactory(username="ann")
    for _ in range(2):
        assert client.post("/accounts/sign-in/", {"username": "ann", "password": "bad"}).status_code == 401
    third = client.post("/accounts/sign-in/", {"username": "ann", "password": "bad"})
    assert third.status_code == 429, "the failure that reaches the limit says so at once"
    locked = client.post("/accounts/sign-in/", {"username": "ANN", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this account. Try again in 15 minutes." in locked.content.decode()
    assert int(locked["Retry-After"]) > 14 * 60
    assert "_auth_user_id" not in client.session
    # Other accounts are not affected; case does not bypass the lock.
    UserFactory(username="ben")
    assert client.post("/accounts/sign-in/", {"username": "ben", "password": PASSWORD}).status_code == 302
    assert LoginFailure.objects.filter(username="ann").count() == 3, "refused attempts are not counted"


def test_successful_sign_in_clears_failures(client):
    UserFactory(username="ann")
    client.post("/accounts/sign-in/", {"username": "ann", "password": "bad"})
    client.post("/accounts/sign-in/", {"username": "ann", "password": PASSWORD})
    assert not LoginFailure.objects.filter(username="ann").exists()


def test_sign_in_without_csrf_token_is_refused():
    UserFactory(username="ann")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/accounts/sign-in/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 403
    assert "security token" in response.content.decode()
    assert "_auth_user_id" not in strict.session


def test_over_long_fields_are_a_clear_400(client):
    response = client.post("/accounts/sign-in/", {"username": "a" * 5000, "password": "x" * 5000})
    assert response.status_code == 400
    assert "at most 150 characters" in response.content.decode()


def test_open_redirect_is_refused(client):
    UserFactory(username="ann")
    response = client.post("/accounts/sign-in/", {"username": "ann", "password": PASSWORD,
                                                  "next": "https://evil.example.com/"})
    assert response["Location"] == "/"


def test_sign_out_needs_post_and_csrf():
    user = UserFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.get("/accounts/sign-out/").status_code == 405
    assert strict.post("/accounts/sign-out/").status_code == 403
    assert "_auth_user_id" in strict.session
