"""Code-host integrations and discovery against a local fake code host (tests/catalog/codehost.py):
blob URLs turned into each host's API call with its token, tokens never sent to another origin,
relative $text through the same integration, GitHub/GitLab discovery paged and rate-limit aware."""

import textwrap
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog import integrations, services, tasks
from catalog.descriptors.errors import DescriptorError
from catalog.descriptors.fetch import Credentials, fetch_url
from catalog.models import Entity, Location, ScanFile
from portal.accounts import services as account_services

from . import codehost

pytestmark = pytest.mark.django_db
TOKEN = "ghp_test-token-0123456789"


def component(name: str, description: str = "x", owner: str = "fraud-ml") -> str:
    return textwrap.dedent(f"""\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: {name}
          description: {description}
        spec:
          type: service
          lifecycle: production
          owner: {owner}
        """)


@pytest.fixture
def host(settings):
    """A fake code host on 127.0.0.1 with a token; `host.integration(kind)` configures it."""
    settings.PLINTH_CATALOG_ALLOW_PRIVATE_URLS = True
    settings.PLINTH_CATALOG_ALLOWED_HOSTS = []
    settings.PLINTH_INTEGRATIONS_RATE_LIMIT_WAIT = 5
    state = codehost.CodeHost(token=TOKEN)
    server, port = codehost.start(state)
    state.base_url = f"http://127.0.0.1:{port}"
    state.web = f"127.0.0.1:{port}"

    def integrate(kind: str, **extra):
        api = {"github": "/api/v3", "gitlab": "/api/v4", "bitbucket": "/2.0", "azure": ""}[kind]
        entry = {"type": kind, "host": state.web, "token": TOKEN, "api_base_url": state.base_url + api, **extra}
        if kind == "github":
            entry.setdefault("raw_base_url", state.base_url + "/raw")
        settings.PLINTH_INTEGRATIONS = [entry]

    state.integration = integrate
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_host():
    """A second server, on another host name (localhost): what a redirect may lead to."""
    state = codehost.CodeHost()
    server, port = codehost.start(state)
    state.base_url = f"http://localhost:{port}"
    yield state
    server.shutdown()
    server.server_close()


def register(target, **kw):
    return services.location_register(target=target, actor=None, file_roots=None, **kw)


def refresh(target):
    return services.location_refresh(location=Location.objects.get(target=target))


# -- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,message", [
    ("{not json", "PLINTH_INTEGRATIONS is not valid JSON"),
    ('{"type": "github"}', "must be a JSON list"),
    ('[{"type": "svn", "host": "x.example"}]', "type must be one of github, gitlab, bitbucket, azure"),
    ('[{"type": "github", "host": "https://github.com"}]', "host must be a host name"),
    ('[{"type": "github", "host": "a.example", "tokn": "x"}]', "unknown keys: tokn"),
    ('[{"type": "github", "host": "a.example", "token": 5}]', "token must be a string"),
    ('[{"type": "github", "host": "a.example"}, {"type": "gitlab", "host": "A.example"}]', "configured twice"),
])
def test_malformed_integrations_setting_says_what_is_wrong_without_the_token(settings, raw, message):
    settings.PLINTH_INTEGRATIONS = raw
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        integrations.configured()
    assert "PLINTH_INTEGRATIONS" in str(caught.value)


def test_token_is_not_in_the_integration_repr(settings):
    settings.PLINTH_INTEGRATIONS = f'[{{"type": "github", "host": "ghe.example", "token": "{TOKEN}"}}]'
    integration = integrations.configured()["ghe.example"]
    assert TOKEN not in repr(integration)
    assert integration.api_base_url == "https://ghe.example/api/v3"
    assert TOKEN not in repr(integration.credentials("https://ghe.example/api/v3/repos/a/b/contents/x"))


@pytest.mark.parametrize("url,api", [
    ("https://github.com/acme/fraud/blob/main/catalog-info.yaml",
     "https://raw.githubusercontent.com/acme/fraud/main/catalog-info.yaml"),
    ("https://gitlab.com/acme/ml/fraud/-/blob/dev/svc/catalog-info.yaml",
     "https://gitlab.com/api/v4/projects/acme%2Fml%2Ffraud/repository/files/svc%2Fcatalog-info.yaml/raw?ref=dev"),
    ("https://bitbucket.org/acme/fraud/src/main/catalog-info.yaml",
     "https://api.bitbucket.org/2.0/repositories/acme/fraud/src/main/catalog-info.yaml"),
    ("https://dev.azure.com/acme/ml/_git/fraud?path=/catalog-info.yaml&version=GBmain",
     "https://dev.azure.com/acme/ml/_apis/git/repositories/fraud/items?path=%2Fcatalog-info.yaml"
     "&versionDescriptor.version=main&versionDescriptor.versionType=branch&api-version=7.0"),
])
def test_public_hosts_blob_urls_map_to_their_documented_calls(settings, url, api):
    settings.PLINTH_INTEGRATIONS = ""
    ref = integrations.parse_file_url(url)
    assert ref.request()[0] == api
    assert ref.request()[2] is None, "no token configured: nothing to send"
    assert ref.blob_url() == url


def test_github_with_a_token_uses_the_contents_api(settings):
    settings.PLINTH_INTEGRATIONS = [{"type": "github", "host": "github.com", "token": TOKEN}]
    url, headers, creds = integrations.parse_file_url("https://github.com/acme/fraud/blob/v1.2/a/catalog-info.yaml").request()
    assert url == "https://api.github.com/repos/acme/fraud/contents/a/catalog-info.yaml?ref=v1.2"
    assert headers["Accept"] == "application/vnd.github.raw+json"
    assert creds.headers == {"Authorization": f"Bearer {TOKEN}"} and creds.origin == ("https", "api.github.com", 443)


@pytest.mark.parametrize("url", [
    "https://github.com/acme", "https://github.com/acme/fraud", "https://github.com/acme/fraud/tree/main/x",
    "https://gitlab.com/acme/fraud/blob/main/x.yaml", "https://dev.azure.com/acme/ml/_git/fraud",
    "https://bitbucket.org/acme/fraud/src/main",
])
def test_a_code_host_url_that_names_no_file_is_a_clear_error(settings, url):
    settings.PLINTH_INTEGRATIONS = ""
    with pytest.raises(DescriptorError) as caught:
        integrations.parse_file_url(url)
    assert url in caught.value.message and "expected" in caught.value.message


# -- reading files ---------------------------------------------------------------------------------

def test_github_blob_url_is_read_through_the_api_with_the_token(host):
    host.integration("github")
    host.add_repo("acme", "fraud", files={"catalog-info.yaml": component("fraud-svc")})
    plan = register(f"http://{host.web}/acme/fraud/blob/main/catalog-info.yaml")
    assert [c.ref for c in plan.added] == ["component:default/fraud-svc"], plan.errors
    (request,) = host.seen()
    assert request.path == "/api/v3/repos/acme/fraud/contents/catalog-info.yaml?ref=main"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github.raw+json"
    assert Location.objects.get().type == "url"


@pytest.mark.parametrize("kind,url,expected_path", [
    ("gitlab", "{web}/acme/ml/fraud/-/blob/main/catalog-info.yaml",
     "/api/v4/projects/acme%2Fml%2Ffraud/repository/files/catalog-info.yaml/raw?ref=main"),
    ("bitbucket", "{web}/acme/fraud/src/main/catalog-info.yaml",
     "/2.0/repositories/acme/fraud/src/main/catalog-info.yaml"),
    ("azure", "{web}/acme/ml/_git/fraud?path=/catalog-info.yaml&version=GBmain",
     "/acme/ml/_apis/git/repositories/fraud/items?path=%2Fcatalog-info.yaml&versionDescriptor.version=main"),
])
def test_gitlab_bitbucket_azure_blob_urls_are_read_with_their_token(host, kind, url, expected_path):
    host.integration(kind)
    repo = "acme/ml/fraud" if kind in ("gitlab", "azure") else "acme/fraud"
    host.files[(repo, "main", "catalog-info.yaml")] = component(f"{kind}-svc").encode()
    plan = register(url.format(web=f"http://{host.web}"))
    assert [c.ref for c in plan.added] == [f"component:default/{kind}-svc"], plan.errors
    (request,) = host.seen()
    assert request.path.startswith(expected_path)
    assert request.headers["authorization"] != "" and TOKEN not in str(Location.objects.get().errors.all())


def test_relative_text_placeholders_are_sibling_files_read_through_the_integration(host):
    host.integration("github")
    descriptor = component("documented").replace("description: x", "description: {$text: ./docs/about.md}")
    host.add_repo("acme", "docs", files={"catalog-info.yaml": descriptor, "docs/about.md": "From the repository."})
    plan = register(f"http://{host.web}/acme/docs/blob/main/catalog-info.yaml")
    assert not plan.errors
    assert Entity.objects.get(ref="component:default/documented").data["metadata"]["description"] == "From the repository."
    paths = [r.path for r in host.seen()]
    assert "/api/v3/repos/acme/docs/contents/docs/about.md?ref=main" in paths
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in host.seen())


def test_a_relative_placeholder_may_not_leave_the_repository(host):
    host.integration("github")
    descriptor = component("nosy").replace("description: x", "description: {$text: ../../../other/private/blob/main/s.md}")
    host.add_repo("acme", "nosy", files={"catalog-info.yaml": descriptor})
    host.add_repo("other", "private", files={"s.md": "secret"})
    plan = register(f"http://{host.web}/acme/nosy/blob/main/catalog-info.yaml")
    assert any("leaves the repository acme/nosy" in e.message for e in plan.errors)
    assert not any("/other/" in r.path for r in host.seen())


def test_token_is_not_sent_to_a_redirect_on_another_host(host, other_host):
    host.integration("github")
    other_host.files[("x/y", "main", "z.yaml")] = component("moved").encode()
    host.redirects["/api/v3/repos/acme/moved/contents/catalog-info.yaml"] = f"{other_host.base_url}/raw/x/y/main/z.yaml"
    plan = register(f"http://{host.web}/acme/moved/blob/main/catalog-info.yaml")
    assert [c.ref for c in plan.added] == ["component:default/moved"], plan.errors
    assert host.seen()[0].headers["authorization"] == f"Bearer {TOKEN}"
    (followed,) = other_host.seen()
    assert "authorization" not in followed.headers
    assert followed.headers["accept"] == "application/vnd.github.raw+json", "other headers still go"


def test_credentials_are_dropped_for_good_once_a_redirect_leaves_their_origin(host, other_host, settings):
    host.token = ""  # the way back is served without one: what matters is what was sent
    host.files[("a/b", "main", "c")] = b"back home"
    other_host.redirects["/bounce"] = f"{host.base_url}/raw/a/b/main/c"
    host.redirects["/start"] = f"{other_host.base_url}/bounce"
    creds = Credentials.for_url(host.base_url, {"Authorization": f"Bearer {TOKEN}"})
    body, final = fetch_url(f"{host.base_url}/start", allowed_hosts=None, allow_private=True, max_bytes=1024,
                            timeout=5, credentials=creds)
    assert body == b"back home"
    first, back = host.seen()
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in other_host.seen()[0].headers
    assert "authorization" not in back.headers, "not re-sent after leaving, even on the way back"


def test_same_host_other_port_gets_no_token(host, settings):
    state = codehost.CodeHost()
    server, port = codehost.start(state)
    try:
        host.redirects["/x"] = f"http://127.0.0.1:{port}/raw/a/b/main/c"
        state.files[("a/b", "main", "c")] = b"ok"
        creds = Credentials.for_url(host.base_url, {"Authorization": f"Bearer {TOKEN}"})
        fetch_url(f"{host.base_url}/x", allowed_hosts=None, allow_private=True, max_bytes=1024, timeout=5,
                  credentials=creds)
        assert "authorization" not in state.seen()[0].headers
    finally:
        server.shutdown()
        server.server_close()


def test_a_host_without_an_integration_is_a_plain_url_without_a_token(host, other_host):
    host.integration("github")  # for 127.0.0.1:port only
    other_host.files[("acme/repo", "main", "catalog-info.yaml")] = component("plain").encode()
    plan = register(f"{other_host.base_url}/raw/acme/repo/main/catalog-info.yaml")
    assert [c.ref for c in plan.added] == ["component:default/plain"], plan.errors
    assert "authorization" not in other_host.seen()[0].headers


def test_bad_code_host_urls_are_refused_with_400_by_the_api(host, demo_org):
    host.integration("github")
    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = Location.objects.count()
    for target, message in [
        (f"http://{host.web}/acme", "is not a file URL of GitHub"),
        (f"github-discovery:http://{host.web}", "does not name an organisation"),
        ("gitlab-discovery:https://unknown.example/group", "is not on a GitLab host"),
        (f"github-discovery:http://{host.web}/nobody", "has no organisation 'nobody'"),
    ]:
        response = api.post("/api/v1/locations", {"target": target}, content_type="application/json")
        assert response.status_code == 400, (target, response.content)
        assert message in response.content.decode(), response.content
    assert Location.objects.count() == before


# -- discovery -------------------------------------------------------------------------------------

def test_github_discovery_registers_every_repository_descriptor_and_follows_removals(host, settings, demo_org):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    host.integration("github")
    host.add_repo("acme", "alpha", files={"catalog-info.yaml": component("alpha")})
    host.add_repo("acme", "beta", branch="trunk", files={"catalog-info.yaml": component("beta")})
    host.add_repo("acme", "old", archived=True, files={"catalog-info.yaml": component("old")})
    host.add_repo("acme", "nodesc", files={"README.md": "no descriptor"})
    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.post("/api/v1/locations", {"type": "github-discovery", "target": f"http://{host.web}/acme"},
                        content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["location"]["type"] == "github-discovery"
    assert body["added"] == ["component:default/alpha", "component:default/beta"]
    assert body["errors"] == [], "a repository without a descriptor is no error"
    assert not any("/repos/acme/old/" in r.path for r in host.seen()), "archived: not read"
    assert any(r.path.endswith("contents/catalog-info.yaml?ref=trunk") for r in host.seen()), "default branch"
    location = Location.objects.get(type="github-discovery")
    assert location.target == f"github-discovery:http://{host.web}/acme"

    # The file removed from one repository, another repository deleted, a new one added.
    host.push("acme/alpha", "catalog-info.yaml", None)
    host.repos["acme"] = [r for r in host.repos["acme"] if r["name"] != "beta"]
    host.add_repo("acme", "gamma", files={"catalog-info.yaml": component("gamma")})
    plan = refresh(location.target)
    assert [c.ref for c in plan.added] == ["component:default/gamma"]
    assert sorted(ref for _, ref in plan.removed) == ["component:default/alpha", "component:default/beta"]
    assert list(Entity.objects.filter(location=location).values_list("ref", flat=True)) == ["component:default/gamma"]


def test_github_discovery_repository_glob_ref_and_path(host):
    host.integration("github")
    host.add_repo("acme", "svc-a", files={"meta/catalog.yaml": component("svc-a")})
    host.files[("acme/svc-a", "release", "meta/catalog.yaml")] = component("svc-a-release").encode()
    host.add_repo("acme", "lib-b", files={"meta/catalog.yaml": component("lib-b")})
    plan = register(f"github-discovery:http://{host.web}/acme/svc-*/blob/release/meta/catalog.yaml")
    assert [c.ref for c in plan.added] == ["component:default/svc-a-release"], plan.errors


def test_gitlab_discovery_pages_with_x_next_page_and_includes_subgroups(host, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    host.integration("gitlab")
    for n in range(230):
        group = "ml" if n % 2 else "ml/sub"
        files = {"catalog-info.yaml": component(f"gl-{n}")} if n % 10 == 0 else {}
        host.add_repo(group, f"p{n}", files=files, gitlab=True, archived=(n == 20))
    host.add_repo("other", "outside", files={"catalog-info.yaml": component("outside")}, gitlab=True)
    plan = register(f"gitlab-discovery:http://{host.web}/ml")
    assert not plan.errors
    assert sorted(c.ref for c in plan.added) == sorted(f"component:default/gl-{n}" for n in range(0, 230, 10) if n != 20)
    listings = [r.path for r in host.seen("/api/v4/groups/")]
    assert len(listings) == 3 and "page=3" in listings[-1], listings
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in host.seen())
    assert Location.objects.get().type == "gitlab-discovery"


def test_discovery_of_5000_repositories_pages_and_waits_out_a_short_rate_limit(host):
    host.integration("github")
    for n in range(5000):
        host.add_repo("big", f"r{n:04d}", files={"catalog-info.yaml": component(f"big-{n}")} if n % 50 == 0 else {})
    original = codehost.Handler._github_list

    def github_list(self, org, query):
        if query.get("page") == ["25"]:
            self.host.reset_at = int(time.time()) + 1
            items, _page, _last = codehost._page(self.host.repos[org], query)
            base = f"{self.host.base_url}/api/v3/orgs/{org}/repos?per_page=100"
            return self._json(200, items, {"Link": f'<{base}&page=26>; rel="next"', "X-RateLimit-Remaining": "0",
                                           "X-RateLimit-Reset": str(self.host.reset_at)})
        return original(self, org, query)

    codehost.Handler._github_list = github_list
    try:
        started = time.monotonic()
        plan = register(f"github-discovery:http://{host.web}/big")
        elapsed = time.monotonic() - started
    finally:
        codehost.Handler._github_list = original
    assert not plan.errors
    assert len(plan.added) == 100
    listings = host.seen("/api/v3/orgs/big/repos")
    assert len(listings) == 50, "100 repositories a page"
    (page_26,) = [r for r in listings if r.path.endswith("page=26")]
    assert page_26.at >= host.reset_at, "the next page waited for the window to reset"
    assert elapsed < 60, elapsed
    assert len(host.seen("/api/v3/repos/big/")) == 5000


def test_a_long_rate_limit_stops_the_scan_and_keeps_the_stored_entities(host, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    host.integration("github")
    for n in range(30):
        host.add_repo("acme", f"r{n:02d}", files={"catalog-info.yaml": component(f"kept-{n}")})
    target = f"github-discovery:http://{host.web}/acme"
    assert len(register(target).added) == 30
    before = sorted(Entity.objects.values_list("ref", "content_hash"))
    for n in range(30):  # every descriptor changed: a half-written refresh would show some of them
        host.push(f"acme/r{n:02d}", "catalog-info.yaml", component(f"kept-{n}", "changed"))
    calls = []

    def limited(path):
        if "/contents/" in path:
            calls.append(path)
            if len(calls) > 10:  # part-way through the files: an hour until the reset
                return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)}
        return None

    host.rate_limit = limited
    plan = refresh(target)
    location = Location.objects.get(target=target)
    assert sorted(Entity.objects.values_list("ref", "content_hash")) == before, "nothing half-written"
    assert location.status == "error"
    (error,) = location.errors.all()
    assert "rate limit reached" in error.message and "Nothing was changed" in error.message
    assert TOKEN not in error.message
    assert not plan.added and not plan.changed and not plan.removed

    host.rate_limit = None  # the next refresh, once the limit has reset
    plan = refresh(target)
    assert len(plan.changed) == 30 and Location.objects.get(target=target).status == "ok"


def test_a_scan_stopped_by_a_rate_limit_resumes_where_it_stopped(host):
    """A first scan larger than the request budget: the files fetched before the limit are kept
    (ScanFile), the next scan asks only for the rest, and a repository pushed to meanwhile again."""
    host.integration("github")
    for n in range(30):
        host.add_repo("acme", f"r{n:02d}", files={"catalog-info.yaml": component(f"resumed-{n}")} if n % 3 else {})
    target = f"github-discovery:http://{host.web}/acme"
    calls = []

    def limited(path):
        if "/contents/" in path:
            calls.append(path)
            if len(calls) > 12:
                return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)}
        return None

    host.rate_limit = limited
    with pytest.raises(DescriptorError, match="rate limit reached"):
        register(target)
    assert not Location.objects.exists() and not Entity.objects.exists(), "nothing of a stopped scan is stored"
    kept = dict(ScanFile.objects.values_list("source", "body"))
    assert len(kept) == 12, "the files answered before the limit, those without a descriptor (404) too"
    assert any(body is None for body in kept.values()) and any(body for body in kept.values())
    pushed = next(source for source, body in kept.items() if body)
    repo = "acme/" + pushed.split("/acme/")[1].split("/")[0]
    host.push(repo, "catalog-info.yaml", component(f"resumed-{int(repo.split('/r')[1])}", "pushed since"))

    host.rate_limit = None
    host.requests.clear()
    plan = register(target)
    assert len(plan.added) == 20 and not plan.errors
    fetched = sorted(r.path.split("/")[5] for r in host.seen("/api/v3/repos/"))
    assert len(fetched) == 30 - 12 + 1, fetched  # the rest, and the repository pushed to since
    assert repo.split("/")[1] in fetched
    assert Entity.objects.filter(description="pushed since").count() == 1
    assert not ScanFile.objects.exists(), "a complete scan, stored: nothing left to resume"


def test_expired_scan_files_of_any_target_are_deleted_on_the_beat(settings):
    """A target that is never scanned again keeps no repository bytes past SCAN_FILE_DAYS: the hourly
    task deletes them whatever their target; younger files stay for the next scan."""
    now = timezone.now()
    for target, source, days in [("https://github.com/gone-org", "a", 8), ("https://github.com/gone-org", "b", 7.01),
                                 ("https://github.com/acme", "c", 6.99)]:
        ScanFile.objects.create(target=target, source=source, version="v1", body=b"kind: Component",
                                fetched_at=now - timedelta(days=days))
    assert tasks.prune_scan_files() == 2
    assert list(ScanFile.objects.values_list("source", flat=True)) == ["c"]
    assert tasks.prune_scan_files() == 0
    entry = settings.CELERY_BEAT_SCHEDULE["catalog-prune-scan-files"]
    assert entry == {"task": "catalog.tasks.prune_scan_files", "schedule": 3600.0}


@pytest.mark.prod_smoke
@pytest.mark.usefixtures("postgres_only")
def test_a_stopped_scan_resumes_on_postgresql(host):
    test_a_scan_stopped_by_a_rate_limit_resumes_where_it_stopped(host)  # the kept bodies as bytea


def test_retry_after_that_is_short_is_waited_for(host):
    host.integration("github")
    host.add_repo("acme", "one", files={"catalog-info.yaml": component("one")})
    answered = []

    def once(path):
        if "/contents/" in path and not answered:
            answered.append(time.monotonic())
            return 429, {"Retry-After": "1"}
        return None

    host.rate_limit = once
    plan = register(f"github-discovery:http://{host.web}/acme")
    assert [c.ref for c in plan.added] == ["component:default/one"], plan.errors
    retried = [r for r in host.seen() if "/contents/" in r.path]
    assert len(retried) == 2


def test_a_new_discovery_location_that_cannot_be_listed_is_not_stored(host):
    host.integration("github")
    host.rate_limit = lambda path: (403, {"Retry-After": "7200"})
    with pytest.raises(DescriptorError, match="rate limit reached"):
        register(f"github-discovery:http://{host.web}/acme")
    assert not Location.objects.exists()


@pytest.mark.parametrize("headers", [
    {"Retry-After": "inf"}, {"Retry-After": "1e300"}, {"Retry-After": "-5"}, {"Retry-After": "nan"},
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1e20"},
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "inf"},
    {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
])
def test_a_rate_limit_header_with_an_absurd_wait_stops_the_read_with_its_message(host, settings, headers):
    """The host chooses the number: infinite, astronomically far or negative, it reads as the default
    wait or at most a day, and the read stops with RateLimited (it was an OverflowError, a 500)."""
    settings.PLINTH_INTEGRATIONS_RATE_LIMIT_WAIT = 0  # the default wait (60 s) is not waited for either
    host.integration("github")
    host.rate_limit = lambda path: (403, headers)
    with pytest.raises(integrations.RateLimited, match="rate limit"):
        register(f"github-discovery:http://{host.web}/acme")
    assert not Location.objects.exists()


@pytest.mark.parametrize("value,expected", [("inf", 60.0), ("-5", 60.0), ("nan", 60.0), ("1e300", 86400.0),
                                            ("30", 30.0)])
def test_retry_after_reads_as_a_bounded_wait(value, expected):
    from catalog.descriptors.fetch import Fetched

    answer = Fetched(status=429, headers={"retry-after": value}, body=b"", url="https://github.com/x")
    assert integrations._rate_limit_wait(answer) == expected


def test_the_register_page_answers_400_with_the_message_for_a_bad_code_host_target(host, client, demo_org):
    host.integration("github")
    client.force_login(demo_org["users"]["alice"])
    for target, message in [(f"http://{host.web}/acme/fraud", "is not a file URL of GitHub"),
                            (f"github-discovery:http://{host.web}/nobody", "has no organisation")]:
        response = client.post(reverse("catalog:register"), {"target": target})
        assert response.status_code == 400
        assert message in response.content.decode()
    host.add_repo("acme", "fraud", files={"catalog-info.yaml": component("from-the-page")})
    response = client.post(reverse("catalog:register"),
                           {"target": f"github-discovery:http://{host.web}/acme", "confirm": "1"})
    assert response.status_code == 302
    location = Entity.objects.get(ref="component:default/from-the-page").location
    assert location.type == "github-discovery"
    page = client.get(response["Location"])
    assert page.status_code == 200 and "from-the-page" in page.content.decode()


def test_a_malformed_integrations_setting_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.PLINTH_INTEGRATIONS = '[{"type": "github"}]'
    with pytest.raises(SystemCheckError, match=r"catalog.E001.*PLINTH_INTEGRATIONS\[0\]: host must be"):
        call_command("check")


def test_a_refresh_fetches_only_the_files_of_repositories_pushed_to_since_the_last_scan(host, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    host.integration("github")
    for n in range(20):
        host.add_repo("acme", f"r{n:02d}", files={"catalog-info.yaml": component(f"r{n}")} if n % 2 else {})
    target = f"github-discovery:http://{host.web}/acme"
    assert len(register(target).added) == 10
    assert len(host.seen("/api/v3/repos/")) == 20
    host.requests.clear()

    plan = refresh(target)  # nothing pushed: the listing only
    assert not (plan.added or plan.changed or plan.removed) and len(plan.unchanged) == 10
    assert host.seen("/api/v3/repos/") == [] and len(host.seen("/api/v3/orgs/")) == 1

    host.push("acme/r01", "catalog-info.yaml", component("r1", "pushed"))  # changed
    host.push("acme/r02", "catalog-info.yaml", component("r2-new"))  # a descriptor added
    host.push("acme/r03", "catalog-info.yaml", None)  # removed
    plan = refresh(target)
    assert [c.ref for _, c in plan.changed] == ["component:default/r1"]
    assert [c.ref for c in plan.added] == ["component:default/r2-new"]
    assert [ref for _, ref in plan.removed] == ["component:default/r3"]
    fetched = sorted(r.path.split("/")[5] for r in host.seen("/api/v3/repos/"))
    assert fetched == ["r01", "r02", "r03"]


def test_a_file_that_failed_is_fetched_again_at_the_next_refresh_and_its_entities_stay(host, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    host.integration("github")
    host.add_repo("acme", "flaky", files={"catalog-info.yaml": component("flaky")})
    target = f"github-discovery:http://{host.web}/acme"
    register(target)
    host.push("acme/flaky", "catalog-info.yaml", component("flaky", "new"))
    host.rate_limit = lambda path: (500, {}) if "/contents/" in path else None
    plan = refresh(target)
    assert Entity.objects.filter(ref="component:default/flaky").exists() and not plan.removed
    assert any("HTTP 500" in e.message for e in plan.errors)
    host.rate_limit = None
    plan = refresh(target)
    assert [c.ref for _, c in plan.changed] == ["component:default/flaky"] and not plan.errors


def test_an_absolute_placeholder_into_another_repository_is_not_read_with_the_token(host, write_tree):
    host.integration("github")
    other = f"http://{host.web}/other/private/blob/main/secret.md"
    nosy = component("nosy").replace("description: x", f"description: {{$text: {other}}}")
    host.add_repo("acme", "nosy", files={"catalog-info.yaml": nosy, "same.md": "ok"})
    host.add_repo("other", "private", files={"secret.md": "secret"})
    plan = register(f"http://{host.web}/acme/nosy/blob/main/catalog-info.yaml")
    assert any("is not in the descriptor's repository" in e.message for e in plan.errors), plan.errors
    folder = write_tree({"catalog-info.yaml": component("local").replace("description: x", f"description: {{$text: {other}}}")})
    plan = register(str(folder / "catalog-info.yaml"))
    assert any("is not in the descriptor's repository" in e.message for e in plan.errors), plan.errors
    assert not any("/other/" in r.path for r in host.seen()), "never asked for"
    same = component("same").replace("description: x", f"description: {{$text: http://{host.web}/acme/same/blob/main/x.md}}")
    host.add_repo("acme", "same", files={"catalog-info.yaml": same, "x.md": "own file, absolute URL"})
    register(f"http://{host.web}/acme/same/blob/main/catalog-info.yaml")
    assert Entity.objects.get(ref="component:default/same").data["metadata"]["description"] == "own file, absolute URL"


@pytest.mark.parametrize("url", [
    "https://github.com/a/b/blob/main/..%2f..%2fuser", "https://github.com/a/b/blob/main/%2E%2E/x",
    "https://github.com/a/b%2Fc/blob/main/x", "https://gitlab.com/a/b/-/blob/main/x%2F..%2F..%2Fy",
    "https://dev.azure.com/a/b/_git/c?path=/../../x&version=GBmain", "https://github.com/a/b/blob/main//x",
])
def test_encoded_dot_segments_and_slashes_cannot_steer_the_api_call(settings, url):
    """The API call made with the token must name the file, not some other endpoint of the API."""
    settings.PLINTH_INTEGRATIONS = ""
    with pytest.raises(DescriptorError, match="is not a file URL"):
        integrations.parse_file_url(url)


@pytest.mark.parametrize("target", ["http://[::1", "github-discovery:http://[::1", "https://github.com:99999/a/b/blob/m/x",
                                    "github-discovery:https://github.com/a/%2e%2e"])
def test_malformed_urls_are_a_400_not_a_500(demo_org, target):
    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="t")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post("/api/v1/locations", {"target": target},
                                                               content_type="application/json")
    assert response.status_code == 400, response.content
