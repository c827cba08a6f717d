"""The OpenID provider fixture: one real `oidc-provider` process for the whole session (tests/accounts/
oidc_provider.py), and a settings fixture that points the live test server at it."""

from __future__ import annotations

import pytest

from portal.accounts import services
from portal.accounts.models import MembershipSource, Team
from tests.accounts.oidc_provider import CLIENT_ID, CLIENT_SECRET, OpenIDProvider, ProviderMissing
from tests.factories import MembershipFactory, UserFactory

GROUP_MAP = {
    "plinth-fraud-ml": ("fraud-ml", "member"),
    "plinth-risk-reviewers": ("model-risk", "reviewer"),
    "plinth-fraud-ml-leads": ("fraud-ml", "maintainer"),
    "plinth-admins": ("platform", "admin"),
}


@pytest.fixture(scope="session")
def oidc_provider(live_server):
    try:
        provider = OpenIDProvider(redirect_uri=f"{live_server.url}/accounts/oidc/callback/",
                                  post_logout_uri=f"{live_server.url}/accounts/sign-in/")
    except ProviderMissing as exc:
        pytest.fail(str(exc))
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def sso(oidc_provider, settings):
    """The portal configured for the test provider (what the PLINTH_OIDC_* variables set)."""
    from portal.accounts import oidc

    settings.PLINTH_OIDC_ISSUER = oidc_provider.issuer
    settings.PLINTH_OIDC_CLIENT_ID = CLIENT_ID
    settings.PLINTH_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.PLINTH_OIDC_SCOPES = "openid email profile groups"
    settings.PLINTH_OIDC_GROUP_MAP = GROUP_MAP
    settings.PLINTH_OIDC_ADMIN_GROUPS = []
    settings.PLINTH_LOCAL_LOGIN = "admins"
    oidc_provider.set_account("ada", preferred_username="ada", email="ada@example.com", email_verified=True,
                              given_name="Ada", family_name="Lovelace",
                              groups=["plinth-fraud-ml", "plinth-risk-reviewers", "staff"])
    oidc_provider.mangle_next_id_token(None)
    yield oidc_provider
    oidc_provider.mangle_next_id_token(None)
    oidc.forget_cached_clients()


@pytest.fixture
def team() -> Team:
    """A team with a manual and a single sign-on member (the team-delete tests' subject)."""
    team = services.team_create(name="fraud-ml", title="Fraud ML", description="Detects fraud.")
    MembershipFactory(user=UserFactory(username="bob"), team=team, role="maintainer")
    MembershipFactory(user=UserFactory(username="eve"), team=team, role="viewer", source=MembershipSource.OIDC)
    return team
