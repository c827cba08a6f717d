"""Every POST form the demo organisation's pages show, sent back with hostile values.

The crawl of tests/site/test_links.py collects the POST forms of every page it reads, as each signed-in
persona of the demo: the platform admin, who is shown the most, a team maintainer, another team's
maintainer, a read-only viewer and a reviewer (forms shown to them exist, and must hold up too). Each form (two per view: the Star form of every
entity page is one view) is then submitted once per value of `HOSTILE`, put in every field a person can
type into or a page can tamper with (text, textarea, select, hidden, number, date…; submit buttons keep
the value that names their action). Forms that remove something go last, so the others still find their
objects. Sign-out is not submitted. The invariants (docs/security.md):

* every POST form carries a CSRF token;
* no answer is a 5xx, whatever the values (a NUL, 20,000 characters, a number beyond 64 bits, markup…);
* no answer, nor the page it redirects to, shows the markup back unescaped or a `javascript:` link;
* no redirect leaves the portal (a tampered `next`).
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urljoin, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.urls import Resolver404, resolve

from .crawl import crawl

pytestmark = pytest.mark.django_db

MARK = "<script>alert('plinth-form')</script>"
HOSTILE = [
    "", "   ", "\x00", MARK, '"><img src=x onerror=alert(1)>', "A" * 20000, "../../../../etc/passwd",
    "' OR 1=1 --", "{{ 7*7 }} ${{ 7*7 }}", "-1", "99999999999999999999999", "\u202egnp.exe", "𝔓𝔩𝔦𝔫𝔱𝔥",
    "javascript:alert(1)", "https://evil.example/", "//evil.example/",
]
TYPED = {"text", "textarea", "search", "url", "email", "number", "hidden", "select", "date", "datetime-local",
         "time", "month", "week", "tel", "password", "color", "range", "checkbox", "radio"}
PER_VIEW_FORMS = 2
REMOVES = re.compile(r"unregister|delete|remove|revoke|withdraw|retire|leave")
UNESCAPED = [MARK, "<img src=x onerror=alert(1)>"]
JS_LINK = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def _view(action: str) -> str | None:
    try:
        return resolve(urlsplit(action).path).view_name
    except Resolver404:
        return None


def _local(location: str, base: str) -> str | None:
    """The path of a redirect's target inside the portal, or None when it leaves it."""
    target = urlsplit(urljoin(base, location))
    if target.netloc not in ("", "testserver"):
        return None
    return target._replace(scheme="", netloc="").geturl()


def _check(response, where: str) -> list[str]:
    problems = []
    if response.status_code >= 500:
        problems.append(f"{where}: {response.status_code}")
    if "html" in response.get("Content-Type", ""):
        body = response.content.decode("utf-8", "replace")
        problems += [f"{where}: shows {mark!r} unescaped" for mark in UNESCAPED if mark in body]
        if JS_LINK.search(body):
            problems.append(f"{where}: a javascript: link")
    return problems


def submit_all(client: Client, forms: list[dict]) -> tuple[list[str], Counter]:
    problems: list[str] = []
    statuses: Counter = Counter()
    per_view: Counter = Counter()
    chosen = []
    for form in forms:
        view = _view(form["action"])
        if not form["csrf"]:
            problems.append(f"{form['action']} (a form on {form['page']}): no CSRF token")
        if view is None:
            problems.append(f"{form['action']} (a form on {form['page']}): no such route")
        elif "sign-out" not in view and "logout" not in view and per_view[view] < PER_VIEW_FORMS:
            per_view[view] += 1
            chosen.append(form)
    chosen.sort(key=lambda form: bool(REMOVES.search(_view(form["action"]) or "")))
    for form in chosen:
        for value in HOSTILE:
            data: dict[str, list[str]] = {}
            for name, kind, initial in form["fields"]:
                if initial is not None or kind in ("checkbox", "radio"):
                    data.setdefault(name, []).append(value if kind in TYPED else initial)
            where = f"POST {form['action']} (from {form['page']}) with {value[:30]!r}"
            response = client.post(form["action"], data)
            statuses[response.status_code // 100 * 100] += 1
            problems += _check(response, where)
            for _hop in range(3):  # the page a successful post lands on shows what was sent
                if response.status_code not in (301, 302, 303, 307, 308):
                    break
                target = _local(response["Location"], form["action"])
                if target is None:
                    problems.append(f"{where}: redirects out of the portal to {response['Location']}")
                    break
                response = client.get(target)
                problems += _check(response, f"{where} → GET {target}")
    return problems, statuses


def _forms_as(users: dict, username: str) -> None:
    client = Client()
    client.force_login(users[username])
    found = crawl(client)
    assert len(found["forms"]) > 30, [f["action"] for f in found["forms"]]
    problems, statuses = submit_all(client, found["forms"])
    assert not problems, "\n".join(problems[:50])
    # Some hostile values were accepted and some refused: the forms were really exercised, not all 403/404.
    assert statuses[300] > 20 and statuses[400] > 20, statuses


@pytest.mark.parametrize("username", ["grace", "alice", "carol", "heidi", "erin"])
def test_every_form_survives_hostile_values(demo_history, username):
    _forms_as(demo_history["users"], username)


@pytest.mark.prod_smoke
def test_every_form_survives_hostile_values_on_postgresql(demo_history):
    """PostgreSQL refuses what SQLite stores (a NUL in text, integers beyond 64 bits): the same forms there."""
    if connection.vendor != "postgresql":
        pytest.skip("the production profile's run (DATABASE_URL on PostgreSQL)")
    _forms_as(demo_history["users"], "grace")


def test_the_form_checks_can_fail():
    """Each invariant is seen broken on a made-up answer."""

    class Answer(dict):
        def __init__(self, status: int, body: str, content_type: str = "text/html; charset=utf-8"):
            super().__init__({"Content-Type": content_type})
            self.status_code, self.content = status, body.encode()

    assert _check(Answer(500, ""), "x") == ["x: 500"]
    assert _check(Answer(200, f"<p>{MARK}</p>"), "x") == [f"x: shows {MARK!r} unescaped"]
    assert _check(Answer(200, '<a href="javascript:alert(1)">go</a>'), "x") == ["x: a javascript: link"]
    assert _check(Answer(200, "<p>&lt;script&gt;alert(&#x27;plinth-form&#x27;)&lt;/script&gt;</p>"), "x") == []
    assert _local("https://evil.example/", "/catalog/") is None
    assert _local("//evil.example/x", "/catalog/") is None
    assert _local("/catalog/model/default/x/", "/catalog/") == "/catalog/model/default/x/"
