"""OpenID Connect sign-in through a real provider (`oidc-provider` under Node, tests/accounts/oidc_provider.py)
against the live test server, driven by a real HTTP client: the provider's own login form, its redirects,
its token endpoint and its keys. Refused answers are real tokens from that provider, altered on their way
out by the provider script (an expired, re-audienced, tampered … ID token), so only the one altered
property can be why the portal refuses them."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model

from portal.accounts import oidc
from portal.accounts.models import Membership, OIDCIdentity, Team
from portal.core.models_audit import AuditEvent
from tests.accounts.oidc_provider import CLIENT_SECRET
from tests.factories import PASSWORD, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


class _Forms(HTMLParser):
    """The forms of a page: [(action, {hidden field: value})]."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append((attrs.get("action") or "", {}))
        elif tag == "input" and self.forms and attrs.get("name") and attrs.get("type") == "hidden":
            self.forms[-1][1][attrs["name"]] = attrs.get("value") or ""


def forms_of(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Flow:
    """One browser's worth of cookies, driving the authorization code flow by hand."""

    def __init__(self, live_server) -> None:
        self.base = live_server.url
        self.http = requests.Session()

    def to_provider_login(self) -> requests.Response:
        answer = self.http.get(f"{self.base}/accounts/oidc/start/", timeout=10)
        assert answer.status_code == 200, answer.text[:500]
        assert "/interaction/" in answer.url, f"expected the provider's login form, got {answer.url}"
        return answer

    def log_in_at_provider(self, login: str) -> str:
        """Fill the provider's login form; returns the portal callback URL the provider redirects to."""
        page = self.to_provider_login()
        action, hidden = forms_of(page.text)[0]
        answer = self.http.post(urljoin(page.url, action), data={**hidden, "login": login, "password": "any"},
                                allow_redirects=False, timeout=10)
        return self.follow_to_callback(answer)

    def follow_to_callback(self, answer: requests.Response) -> str:
        for _ in range(10):
            assert answer.is_redirect, f"{answer.status_code} at {answer.url}: {answer.text[:500]}"
            location = urljoin(answer.url, answer.headers["Location"])
            if location.startswith(f"{self.base}/accounts/oidc/callback/"):
                return location
            answer = self.http.get(location, allow_redirects=False, timeout=10)
        raise AssertionError("the provider never redirected back to the portal")

    def callback(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=20)

    def sign_in(self, login: str) -> requests.Response:
        return self.callback(self.log_in_at_provider(login))


def test_first_sign_in_creates_the_user_in_the_mapped_teams(live_server, sso, caplog):
    caplog.set_level(logging.DEBUG)
    TeamFactory(name="fraud-ml")
    flow = Flow(live_server)
    answer = flow.sign_in("ada")
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:500]

    ada = User.objects.get(username="ada")
    assert (ada.email, ada.first_name, ada.last_name) == ("ada@example.com", "Ada", "Lovelace")
    assert not ada.has_usable_password(), "a single sign-on account has no password to guess"
    assert OIDCIdentity.objects.get(user=ada).issuer == sso.issuer
    memberships = {(m.team.name, m.role, m.source) for m in Membership.objects.filter(user=ada).select_related("team")}
    assert memberships == {("fraud-ml", "member", "oidc"), ("model-risk", "reviewer", "oidc")}
    assert Team.objects.filter(name="model-risk").exists(), "a mapped team that did not exist is created"
    home = flow.http.get(f"{live_server.url}/", timeout=10)
    assert home.status_code == 200 and "Welcome, Ada" in home.text

    actions = list(AuditEvent.objects.filter(target__in=["user:ada", "team:fraud-ml", "team:model-risk"])
                   .order_by("seq").values_list("action", "actor"))
    assert actions == [("user.create", "oidc"), ("team.member.set", "oidc"), ("team.create", "system"),
                       ("team.member.set", "oidc"), ("auth.sign-in", "ada")]
    # Nothing secret reached the portal's logs (at DEBUG, the live server's thread): not the client
    # secret, the code or its verifier, nor a token. (This thread's own HTTP client logs the URLs it opens.)
    server_log = "\n".join(r.getMessage() for r in caplog.records if r.thread != threading.get_ident())
    assert "/accounts/oidc/callback/" in server_log and "/token" in server_log, "the server's records are there"
    assert CLIENT_SECRET not in server_log
    assert "eyJ" not in server_log, "no JWT in the logs"
    assert not re.search(r"code=[\w-]{20,}|code_verifier", server_log)
    assert list(flow.http.cookies.keys()) == ["sessionid"] or "csrftoken" in flow.http.cookies, \
        "the ID token stays in the server-side session"


def test_groups_follow_the_claim_at_each_sign_in_and_manual_memberships_stay(live_server, sso):
    assert Flow(live_server).sign_in("ada").status_code == 302
    ada = User.objects.get(username="ada")
    MembershipFactory(user=ada, team=TeamFactory(name="search"), role="viewer")  # given by hand
    sso.set_account("ada", preferred_username="ada", email="ada@example.com",
                    groups=["plinth-fraud-ml", "plinth-fraud-ml-leads"])  # reviewers group left
    assert Flow(live_server).sign_in("ada").status_code == 302
    memberships = {(m.team.name, m.role, m.source) for m in Membership.objects.filter(user=ada).select_related("team")}
    assert memberships == {("fraud-ml", "maintainer", "oidc"), ("search", "viewer", "manual")}
    removed = AuditEvent.objects.get(action="team.member.remove", target="team:model-risk")
    assert removed.actor == "oidc"


def test_a_rotated_signing_key_is_fetched_and_accepted(live_server, sso):
    assert Flow(live_server).sign_in("ada").status_code == 302  # the portal now holds key-1
    sso.restart(key_id=f"key-{time.monotonic_ns()}")  # the provider signs with a key the portal has not seen
    sso.set_account("ada", preferred_username="ada", groups=["plinth-fraud-ml"])
    answer = Flow(live_server).sign_in("ada")
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:800]


REFUSALS = [
    ("expired", "The ID token has expired"),
    ("audience", "issued for another application (wrong audience)"),
    ("nonce", "does not belong to this sign-in (nonce mismatch)"),
    ("issuer", "issued by another provider (wrong issuer)"),
    ("tampered", "signature does not verify"),
    ("rogue-key", "signed with a key the provider does not publish"),
    ("none", "signed with 'none', which the portal does not accept"),
]


@pytest.mark.parametrize("mode,message", REFUSALS, ids=[mode for mode, _ in REFUSALS])
def test_a_bad_id_token_is_refused_with_a_clear_page(live_server, sso, mode, message):
    flow = Flow(live_server)
    callback = flow.log_in_at_provider("ada")
    sso.mangle_next_id_token(mode)
    answer = flow.callback(callback)
    assert answer.status_code == 401, answer.text[:800]
    assert message in answer.text.replace("&#x27;", "'")
    assert "Single sign-on did not sign you in" in answer.text
    assert not User.objects.filter(username="ada").exists(), "no user is created"
    assert "sessionid" not in flow.http.cookies or "_auth_user_id" not in _session(flow)
    event = AuditEvent.objects.filter(action="auth.sign-in").latest("seq")
    payload = json.loads(event.payload)
    assert (event.actor, payload["outcome"], payload["after"]["method"]) == ("anonymous", "failure", "oidc")
    assert payload["after"]["reason"].startswith("token-")


def _session(flow: Flow) -> dict:
    from django.contrib.sessions.backends.db import SessionStore

    key = flow.http.cookies.get("sessionid")
    return SessionStore(session_key=key).load() if key else {}


def test_a_bad_state_is_refused_and_a_state_is_good_once(live_server, sso):
    flow = Flow(live_server)
    callback = flow.log_in_at_provider("ada")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = flow.callback(f"{live_server.url}{parts.path}?{urlencode({**query, 'state': 'forged-state'})}")
    assert forged.status_code == 400
    assert "does not belong to a sign-in started in this browser" in forged.text
    # Another browser (no session) presenting a real answer is refused the same way (login CSRF).
    stranger = Flow(live_server).callback(callback)
    assert stranger.status_code == 400
    good = flow.callback(callback)
    assert good.status_code == 302 and good.headers["Location"] == "/"
    replay = flow.callback(callback)
    assert replay.status_code == 400, "a state is used once"
    assert User.objects.filter(username="ada").count() == 1


def test_the_providers_own_refusal_and_a_missing_code_are_clear_pages(live_server, sso):
    denied = requests.get(f"{live_server.url}/accounts/oidc/callback/?error=access_denied"
                          "&error_description=User+cancelled&state=x", timeout=10)
    assert denied.status_code == 403
    assert "The identity provider refused the sign-in: access_denied: User cancelled." in denied.text
    missing = requests.get(f"{live_server.url}/accounts/oidc/callback/?state=x", timeout=10)
    assert missing.status_code == 400 and "has no code or no state" in missing.text


def test_a_provider_that_is_down_or_names_another_issuer_is_a_clear_page(live_server, sso, settings):
    from tests import services

    settings.PLINTH_OIDC_ISSUER = f"http://127.0.0.1:{services.free_port()}"
    down = requests.get(f"{live_server.url}/accounts/oidc/start/", timeout=20)
    assert down.status_code == 503 and "could not be reached" in down.text
    # The same provider under another name: its discovery document names 127.0.0.1, not localhost.
    settings.PLINTH_OIDC_ISSUER = sso.issuer.replace("127.0.0.1", "localhost")
    other = requests.get(f"{live_server.url}/accounts/oidc/start/", timeout=20)
    assert other.status_code == 502
    assert f"names the issuer &#x27;{sso.issuer}&#x27;" in other.text


def test_ten_thousand_groups_sign_in_with_only_the_mapped_ones(live_server, sso):
    groups = [f"g{n}" for n in range(10_000)] + ["plinth-fraud-ml"]  # short ids: a ~110 kB token
    sso.set_account("ada", preferred_username="ada", groups=groups)
    started = time.monotonic()
    answer = Flow(live_server).sign_in("ada")
    assert answer.status_code == 302, re.findall(r'data-testid="sso-error">([^<]*)', answer.text)
    assert time.monotonic() - started < 20
    assert list(Membership.objects.filter(user__username="ada").values_list("team__name", flat=True)) == ["fraud-ml"]


def test_an_id_token_too_large_to_read_is_a_clear_refusal(live_server, sso):
    groups = [f"{n:08d}-1f2e-4c3b-9a8d-0123456789ab" for n in range(10_000)]  # Entra-style ids: ~500 kB
    sso.set_account("ada", preferred_username="ada", groups=[*groups, "plinth-fraud-ml"])
    answer = Flow(live_server).sign_in("ada")
    assert answer.status_code == 401
    assert "The ID token is too large to be read" in answer.text
    assert not User.objects.filter(username="ada").exists()


def test_a_name_held_by_a_password_account_is_not_taken_over(live_server, sso):
    UserFactory(username="ada")  # a local account with a password
    answer = Flow(live_server).sign_in("ada")
    assert answer.status_code == 409
    assert "already exists" in answer.text
    assert not OIDCIdentity.objects.exists()


def test_sign_out_ends_the_providers_session_too(live_server, sso):
    flow = Flow(live_server)
    assert flow.sign_in("ada").status_code == 302
    home = flow.http.get(f"{live_server.url}/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.text).group(1)
    out = flow.http.post(f"{live_server.url}/accounts/sign-out/", data={"csrfmiddlewaretoken": token},
                         headers={"Referer": f"{live_server.url}/"}, allow_redirects=False, timeout=10)
    assert out.status_code == 302
    end = urlsplit(out.headers["Location"])
    assert f"{end.scheme}://{end.netloc}" == sso.issuer
    params = parse_qs(end.query)
    assert params["post_logout_redirect_uri"] == [f"{live_server.url}/accounts/sign-in/"]
    assert params["id_token_hint"][0].count(".") == 2
    # The provider asks to confirm, then sends the browser back to the portal's sign-in page.
    confirm = flow.http.get(out.headers["Location"], timeout=10)
    action, hidden = forms_of(confirm.text)[0]
    back = flow.http.post(urljoin(confirm.url, action), data={**hidden, "logout": "yes"}, timeout=10)
    assert back.url.startswith(f"{live_server.url}/accounts/sign-in/")
    # Signed out at both ends: single sign-on asks for the password again.
    flow.to_provider_login()


def test_local_sign_in_is_for_the_break_glass_admin_or_off(live_server, sso, settings, client):
    UserFactory(username="root-admin", is_superuser=True, is_staff=True)
    UserFactory(username="carl")
    page = client.get("/accounts/sign-in/")
    assert "Sign in with single sign-on" in page.content.decode() and "Break-glass administrator" in page.content.decode()
    refused = client.post("/accounts/sign-in/", {"username": "carl", "password": PASSWORD})
    assert refused.status_code == 401, "admins only: to anyone else a password is not enough"
    assert client.post("/accounts/sign-in/", {"username": "root-admin", "password": PASSWORD}).status_code == 302
    client.logout()
    settings.PLINTH_LOCAL_LOGIN = "off"
    off = client.post("/accounts/sign-in/", {"username": "root-admin", "password": PASSWORD})
    assert off.status_code == 403 and "Password sign-in is turned off" in off.content.decode()
    assert "name=\"password\"" not in client.get("/accounts/sign-in/").content.decode()


def test_without_configuration_the_sso_routes_are_404(client, settings):
    settings.PLINTH_OIDC_ISSUER = None
    assert client.get("/accounts/oidc/start/").status_code == 404
    assert client.get("/accounts/oidc/callback/?code=x&state=y").status_code == 404
    assert "single sign-on" not in client.get("/accounts/sign-in/").content.decode()
    assert oidc.enabled() is False
