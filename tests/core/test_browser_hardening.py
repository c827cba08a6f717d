"""Browser-hardening headers on every kind of response, the CSP report endpoint, and the production
profile's cookies and `check --deploy` (in a subprocess, with a PostgreSQL URL nothing listens on)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from portal.core import csp
from portal.core.vendor import PATCHES, PatchedVendorFinder
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": csp.PERMISSIONS_POLICY,
}


def directives(header: str) -> dict[str, list[str]]:
    parts = [d.strip().split() for d in header.split(";") if d.strip()]
    return {p[0]: p[1:] for p in parts}


def violations(directive: str) -> float:
    return REGISTRY.get_sample_value("plinth_csp_violations_total", {"directive": directive}) or 0.0


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("plinth_csp_reports_refused_total", {"reason": reason}) or 0.0


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_hardening_headers(client):
    """Pages, API JSON (200 and 401), static files served by WhiteNoise, 404s and probes alike."""
    signed_in = Client()
    signed_in.force_login(UserFactory())
    responses = {
        "page": signed_in.get("/"),
        "api": signed_in.get("/api/v1/entities"),
        "api-401": client.get("/api/v1/entities"),
        "static": client.get("/static/css/plinth.css"),
        "redoc-bundle": client.get("/static/plinth-vendor/redoc.standalone.js"),
        "404": signed_in.get("/no/such/page/"),
        "probe": client.get("/healthz"),
        "sign-in": client.get("/accounts/sign-in/"),
    }
    assert responses["api-401"].status_code == 401 and responses["static"].status_code == 200
    for name, response in responses.items():
        for header, value in HEADERS.items():
            assert response.get(header) == value, f"{name}: {header} = {response.get(header)!r}"
        policy = directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], name
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], name
        assert policy["worker-src"] == ["'self'", "blob:"], name
        assert policy["report-uri"] == [reverse("core:csp-report")], name
        assert "report-to" not in policy and "Reporting-Endpoints" not in response, f"{name}: plain HTTP"
        assert not any("unsafe-eval" in v or "unsafe-inline" in v for k, vs in policy.items()
                       if k.startswith("script") for v in vs), name
        assert all("http" not in v for vs in policy.values() for v in vs), f"{name}: another origin allowed"


@pytest.mark.django_db
def test_https_responses_also_name_a_reporting_api_endpoint(client):
    """Chromium reads Reporting-Endpoints only from secure responses, and then uses report-to alone."""
    for path in ("/accounts/sign-in/", "/static/css/plinth.css", "/healthz"):
        response = client.get(path, secure=True)
        assert directives(response["Content-Security-Policy"])["report-to"] == ["csp"], path
        assert response["Reporting-Endpoints"] == f'csp="{reverse("core:csp-report")}"', path


@pytest.mark.django_db
def test_docs_pages_tighten_the_same_policy_and_keep_reporting(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    policy = directives(client.get("/docs/", secure=True)["Content-Security-Policy"])
    base = directives(csp.policy())
    assert policy["img-src"] == ["'self'"] and policy["worker-src"] == ["'none'"]
    assert {k: v for k, v in policy.items() if k not in {"img-src", "worker-src"}} == \
        {k: v for k, v in base.items() if k not in {"img-src", "worker-src"}}


def test_the_redoc_bundle_is_served_without_its_cdn_logo(tmp_path, settings):
    """The patched copy loads nothing from another origin; a new bundle without the patched text fails
    `manage.py check` instead of shipping the CDN request."""
    settings.VAR_DIR = tmp_path
    finder = PatchedVendorFinder()
    assert finder.check() == []
    path = finder.find("plinth-vendor/redoc.standalone.js")
    text = Path(path).read_text()
    assert "cdn.redoc.ly" not in text
    assert "sourceMappingURL=redoc.standalone.js.map" not in text, "collectstatic would look for the map"
    assert [p for p, _ in finder.list(None)] == list(PATCHES)
    original = PATCHES["plinth-vendor/redoc.standalone.js"]
    broken = type(original)(source=original.source, replacements=(("no such text in the bundle", ""),))
    PATCHES["plinth-vendor/redoc.standalone.js"] = broken
    try:
        errors = finder.check()
    finally:
        PATCHES["plinth-vendor/redoc.standalone.js"] = original
    assert len(errors) == 1 and "expected 'no such text in the bundle' once, found it 0 times" in errors[0].msg


REPORT = {"csp-report": {
    "document-uri": "https://plinth.example.org/catalog/?token=secret-value#frag",
    "referrer": "", "violated-directive": "img-src", "effective-directive": "img-src",
    "original-policy": "default-src 'self'", "disposition": "enforce",
    "blocked-uri": "https://evil.example.org/pixel.png?session=abc", "line-number": 12,
    "source-file": "https://plinth.example.org/static/js/plinth.js", "status-code": 200, "script-sample": "",
}}


@pytest.mark.django_db
def test_report_uri_body_is_counted_and_logged_without_query_strings(caplog):
    """Browsers post without a session or a CSRF token: 204, one log line, the counter goes up."""
    before = violations("img-src")
    with caplog.at_level(logging.WARNING, logger="plinth.csp"):
        response = Client(enforce_csrf_checks=True).post(
            "/csp-report/", json.dumps(REPORT), content_type="application/csp-report")
    assert response.status_code == 204
    assert violations("img-src") == before + 1
    (record,) = [r for r in caplog.records if r.name == "plinth.csp"]
    line = record.getMessage()
    assert "img-src blocked https://evil.example.org/pixel.png on https://plinth.example.org/catalog/" in line
    assert "secret-value" not in line and "session=abc" not in line and "line 12" in line


@pytest.mark.django_db
def test_reporting_api_bodies_count_each_csp_violation_and_skip_other_reports():
    body = [
        {"type": "csp-violation", "url": "https://plinth.example.org/", "body": {
            "documentURL": "https://plinth.example.org/", "blockedURL": "inline", "effectiveDirective": "script-src-elem",
            "disposition": "enforce", "sample": "alert(1)", "lineNumber": 3}},
        {"type": "csp-violation", "body": {"effectiveDirective": "made-up-directive", "blockedURL": "eval"}},
        {"type": "deprecation", "body": {"id": "x"}},
        "not a report",
    ]
    before = (violations("script-src-elem"), violations("other"))
    response = Client().post("/csp-report/", json.dumps(body), content_type="application/reports+json")
    assert response.status_code == 204
    assert (violations("script-src-elem"), violations("other")) == (before[0] + 1, before[1] + 1)


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "content_type", "status", "reason", "message"), [
    ("{not json", "application/csp-report", 400, "malformed", "the body is not JSON"),
    ('{"csp-report": []}', "application/csp-report", 400, "malformed", 'a JSON object with a "csp-report" object'),
    ('{"a": 1}', "application/reports+json", 400, "malformed", "must be a JSON array"),
    (json.dumps(REPORT), "text/plain", 415, "content_type", "Content-Type must be one of"),
])
def test_bad_report_bodies_get_a_clear_error_and_are_not_recorded(body, content_type, status, reason, message):
    before = refused(reason), violations("img-src")
    response = Client().post("/csp-report/", body, content_type=content_type)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]
    assert (refused(reason), violations("img-src")) == (before[0] + 1, before[1])


@pytest.mark.django_db
def test_an_oversized_report_is_refused_before_it_is_read():
    before = violations("img-src")
    body = json.dumps({"csp-report": {**REPORT["csp-report"], "script-sample": "x" * 33_000}})
    response = Client().post("/csp-report/", body, content_type="application/csp-report")
    assert response.status_code == 413 and "at most 32,768 bytes" in response.content.decode()
    assert violations("img-src") == before


@pytest.mark.django_db
def test_reports_are_rate_limited_per_client(settings):
    settings.PLINTH_API_RATES = {**settings.PLINTH_API_RATES, "csp-report": "3/min"}
    client = Client(REMOTE_ADDR="203.0.113.77")
    responses = [client.post("/csp-report/", json.dumps(REPORT), content_type="application/csp-report")
                 for _ in range(5)]
    assert [r.status_code for r in responses] == [204, 204, 204, 429, 429]
    assert "at most 3 csp-report requests per minute for this address" in responses[-1].json()["error"]["message"]
    assert int(responses[-1]["Retry-After"]) >= 1
    other = Client(REMOTE_ADDR="203.0.113.78")
    assert other.post("/csp-report/", json.dumps(REPORT), content_type="application/csp-report").status_code == 204
    assert Client().get("/csp-report/").status_code == 405


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.sampled_from(["csp-report", "type", "body", "blocked-uri", "blockedURL", "effectiveDirective",
                                      "violated-directive", "line-number", "lineNumber", "document-uri", "x"]),
                     inner, max_size=5), max_leaves=20).map(lambda v: json.dumps(v).encode()),
), content_type=st.sampled_from(["application/csp-report", "application/reports+json", "application/json"]))
def test_no_report_body_is_a_server_error(body, content_type):
    response = Client(REMOTE_ADDR="198.51.100.9").post("/csp-report/", body, content_type=content_type)
    assert response.status_code in {204, 400, 415, 429}, response.content  # 415: an empty body has no type


@pytest.mark.django_db
def test_production_profile_passes_check_deploy_and_sets_hardened_cookies(tmp_path):
    """`check --deploy` with the production profile prints no issue, without a database to talk to
    (DATABASE_URL points at a port nothing listens on); its cookie settings give Secure, HttpOnly,
    SameSite=Lax, __Host- cookies on a real sign-in."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.prod", "SECRET_KEY": secrets.token_urlsafe(60),
           "ALLOWED_HOSTS": "plinth.example.com", "PLINTH_VAR_DIR": str(tmp_path),
           "DATABASE_URL": "postgres://plinth:unused@127.0.0.1:9/plinth", "REDIS_URL": "redis://127.0.0.1:9/0"}
    for test_only in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(test_only, None)
    names = ["SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
             "CSRF_COOKIE_NAME", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY", "CSRF_COOKIE_SAMESITE"]
    script = ("import json, django; django.setup(); from django.conf import settings as s; "
              "from django.core.management import execute_from_command_line as run; "
              "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING']); "
              f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    prod = json.loads(result.stdout.strip().splitlines()[-1])
    assert prod["SESSION_COOKIE_NAME"].startswith("__Host-") and prod["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert prod["SESSION_COOKIE_SAMESITE"] == prod["CSRF_COOKIE_SAMESITE"] == "Lax"
    _sign_in_with_cookie_settings(prod)


def _sign_in_with_cookie_settings(prod: dict) -> None:
    user = UserFactory(username="cookie-check")
    with override_settings(**prod, SECURE_SSL_REDIRECT=False):
        client = Client(enforce_csrf_checks=True)
        page = client.get("/accounts/sign-in/", secure=True)
        token = page.context["csrf_token"]
        response = client.post("/accounts/sign-in/", {"username": user.username, "password": PASSWORD,
                                                       "csrfmiddlewaretoken": str(token)}, secure=True,
                               headers={"Referer": "https://testserver/accounts/sign-in/"})
        assert response.status_code == 302, response.content[:300]
    cookies: SimpleCookie = SimpleCookie()
    for header in [page, response]:
        for morsel in header.cookies.values():
            cookies[morsel.key] = morsel
    for name in (prod["SESSION_COOKIE_NAME"], prod["CSRF_COOKIE_NAME"]):
        morsel = cookies[name]
        assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax", (name, morsel.output())
        assert morsel["path"] == "/" and not morsel["domain"], "__Host- cookies need path / and no domain"


def test_the_local_http_switch_is_refused_for_a_real_host(tmp_path):
    """PLINTH_LOCAL_HTTP (plain-http cookies for `make run PROFILE=prod`) refuses to load the production
    settings when ALLOWED_HOSTS names anything but loopback."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.prod", "SECRET_KEY": secrets.token_urlsafe(60),
           "ALLOWED_HOSTS": "127.0.0.1,plinth.example.com", "PLINTH_VAR_DIR": str(tmp_path),
           "PLINTH_LOCAL_HTTP": "1", "DATABASE_URL": "postgres://plinth:unused@127.0.0.1:9/plinth"}
    env.pop("DEBUG", None)
    script = "import django; django.setup()"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "PLINTH_LOCAL_HTTP is for loopback only" in result.stderr, result.stderr
