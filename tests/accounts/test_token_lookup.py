"""The bearer-token lookup every API request makes (`selectors.token_by_hash`, a statement the ORM builds
once per database): the token and its user come back exactly as the ORM reads them — every field, with
the backend's conversions (aware datetimes on SQLite too) — and a missing, revoked or expired token or an
inactive user is refused by the API as before. On both engines."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from portal.accounts import selectors, services, tokens
from portal.accounts.models import APIToken


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _check(django_assert_num_queries):
    user = get_user_model().objects.create_user(username="okapi", email="okapi@example.com", first_name="O")
    token, raw = services.token_create(user=user, name="ci")
    APIToken.objects.filter(pk=token.pk).update(first_used_at=timezone.now(), last_used_at=timezone.now())
    expected = APIToken.objects.select_related("user").get(pk=token.pk)
    with django_assert_num_queries(1):
        found = selectors.token_by_hash(tokens.hash_token(raw))
        assert _fields(found) == _fields(expected) and _fields(found.user) == _fields(expected.user)
        assert found.user is not None and found.last_used_at.tzinfo is not None and found._state.adding is False
    assert found.is_active and found.user.is_active
    assert selectors.token_by_hash(tokens.hash_token(raw + "x")) is None
    assert selectors.token_by_hash("") is None

    def status() -> int:
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/entities").status_code

    assert status() == 200
    APIToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert status() == 401
    APIToken.objects.filter(pk=token.pk).update(expires_at=None, revoked_at=timezone.now())
    assert status() == 401
    APIToken.objects.filter(pk=token.pk).update(revoked_at=None)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert status() == 401


@pytest.mark.django_db
def test_the_token_lookup_reads_what_the_orm_reads_on_sqlite(django_assert_num_queries):
    _check(django_assert_num_queries)


@pytest.mark.prod_smoke
@pytest.mark.django_db
@pytest.mark.usefixtures("postgres_only")
def test_the_token_lookup_reads_what_the_orm_reads_on_postgresql(django_assert_num_queries):
    _check(django_assert_num_queries)
