"""The groups claim → teams and roles, and the just-in-time user, on verified claims (the service below the
views; tests/accounts/test_oidc.py drives the same through a real provider)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.accounts import services
from portal.accounts.models import Membership, OIDCIdentity
from tests.accounts.conftest import GROUP_MAP
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ISSUER = "https://idp.example.com"


@pytest.fixture(autouse=True)
def mapping(settings):
    settings.PLINTH_OIDC_GROUP_MAP = GROUP_MAP
    settings.PLINTH_OIDC_GROUPS_CLAIM = "groups"
    settings.PLINTH_OIDC_USERNAME_CLAIM = "preferred_username"
    settings.PLINTH_OIDC_ADMIN_GROUPS = ["plinth-platform-admins"]


def claims(sub="s-1", name="ada", groups=()):
    return {"sub": sub, "preferred_username": name, "email": f"{name}@example.com", "groups": list(groups)}


def test_the_strongest_role_wins_and_unmapped_or_odd_entries_are_ignored(settings):
    settings.PLINTH_OIDC_GROUPS_CLAIM = "roles"
    assert services.oidc_teams({"roles": ["plinth-fraud-ml", "plinth-fraud-ml-leads", 7, None, "x" * 5000]}) == \
        {"fraud-ml": "maintainer"}
    assert services.oidc_teams({"roles": "plinth-risk-reviewers"}) == {"model-risk": "reviewer"}
    assert services.oidc_teams({"roles": {"not": "a list"}}) == {}


def test_query_count_does_not_grow_with_the_size_of_the_groups_claim():
    services.oidc_sign_in(issuer=ISSUER, claims=claims(groups=["plinth-fraud-ml"]), address=None)
    counts = []
    for extra in (10, 10_000):
        groups = [f"org-{n}" for n in range(extra)] + ["plinth-fraud-ml"]
        with CaptureQueriesContext(connection) as queries:
            services.oidc_sign_in(issuer=ISSUER, claims=claims(groups=groups), address=None)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_admin_groups_make_and_unmake_platform_admins():
    user = services.oidc_sign_in(issuer=ISSUER, claims=claims(groups=["plinth-platform-admins"]), address=None)
    assert user.is_superuser and user.is_staff
    user = services.oidc_sign_in(issuer=ISSUER, claims=claims(groups=[]), address=None)
    assert not user.is_superuser and not user.is_staff


def test_an_account_without_password_is_linked_once_and_names_never_link_again():
    synced = UserFactory(username="ada")
    synced.set_unusable_password()
    synced.save()
    assert services.oidc_sign_in(issuer=ISSUER, claims=claims(sub="s-1"), address=None) == synced
    with pytest.raises(services.SignInRefused) as refused:
        services.oidc_sign_in(issuer=ISSUER, claims=claims(sub="someone-else"), address=None)
    assert refused.value.status == 409
    assert OIDCIdentity.objects.count() == 1


def test_a_username_claim_that_is_not_a_user_name_is_refused(settings):
    with pytest.raises(services.SignInRefused, match="not a valid user name"):
        services.oidc_sign_in(issuer=ISSUER, claims=claims(name="Ada Lovelace <ada>"), address=None)
    assert not Membership.objects.exists()


def _passwordless(username: str, **fields):
    user = UserFactory(username=username, **fields)
    user.set_unusable_password()
    user.save()
    return user


@pytest.mark.parametrize("verified", [False, "false", "0", None, 1])
def test_an_unverified_email_never_names_or_links_an_account(settings, verified):
    """Without a username claim the name falls back to the e-mail, which could link a password-less
    account: only an e-mail the provider says it verified (true, or the text "true") may."""
    carol = _passwordless("carol@example.com")
    token = {"sub": "attacker", "email": "carol@example.com"} | ({} if verified is None else {"email_verified": verified})
    with pytest.raises(services.SignInRefused, match="not a valid user name"):
        services.oidc_sign_in(issuer=ISSUER, claims=token, address=None)
    assert not OIDCIdentity.objects.exists()
    assert services.oidc_sign_in(issuer=ISSUER, claims=token | {"email_verified": "true"}, address=None) == carol


def test_an_unverified_email_is_not_copied_to_the_profile():
    user = services.oidc_sign_in(issuer=ISSUER, claims=claims() | {"email_verified": "false"}, address=None)
    assert user.email == ""
    user = services.oidc_sign_in(issuer=ISSUER, claims=claims(), address=None)  # not said either way: kept
    assert user.email == "ada@example.com"


def test_a_deactivated_account_is_neither_linked_nor_signed_in():
    bob = _passwordless("bob", is_active=False)
    with pytest.raises(services.SignInRefused, match="deactivated") as refused:
        services.oidc_sign_in(issuer=ISSUER, claims=claims(sub="new-subject", name="bob"), address=None)
    assert refused.value.status == 403
    assert not OIDCIdentity.objects.exists() and not Membership.objects.filter(user=bob).exists()
    from portal.core.models import AuditEvent

    assert not AuditEvent.objects.filter(action="auth.sign-in").exists()


def test_control_characters_in_claims_are_left_out_and_a_subject_with_them_is_refused():
    """PostgreSQL's text cannot hold NUL at all (tests/accounts/test_limits_on_postgres.py runs this there)."""
    token = claims() | {"email": "ada\x00@example.com", "given_name": "A\x00da\n", "family_name": "Love\x07lace"}
    user = services.oidc_sign_in(issuer=ISSUER, claims=token, address=None)
    user.refresh_from_db()
    assert (user.email, user.first_name, user.last_name) == ("", "Ada", "Lovelace")
    user = services.oidc_sign_in(issuer=ISSUER, claims=claims() | {"name": "Ada\x00 L", "given_name": None}, address=None)
    assert user.first_name == "Ada L"
    with pytest.raises(services.SignInRefused, match="subject contains control characters") as refused:
        services.oidc_sign_in(issuer=ISSUER, claims=claims(sub="s\x003", name="eve"), address=None)
    assert refused.value.status == 401 and OIDCIdentity.objects.count() == 1


def test_a_name_differing_only_in_case_is_the_same_account():
    """A local `Ada` (with a password) is not shadowed by a new `ada` from the provider: the same name to the
    catalog (`user:default/ada`), so it is refused like any password account (409)."""
    UserFactory(username="Ada")
    with pytest.raises(services.SignInRefused) as refused:
        services.oidc_sign_in(issuer=ISSUER, claims=claims(name="ada"), address=None)
    assert refused.value.status == 409
    from django.contrib.auth import get_user_model

    assert list(get_user_model().objects.filter(username__iexact="ada").values_list("username", flat=True)) == ["Ada"]
