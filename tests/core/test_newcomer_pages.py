"""What a newcomer meets on the plain pages: the home page's own requests, runs and recently viewed
entities (in a constant number of queries), one date format, human relation labels, the catalog's
default kinds, no dead menu item, the audit link for who may read it, styled error pages, and the
API references inside the portal's frame."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import recent
from catalog.descriptors.relations import RELATION_PAIRS, relation_label
from catalog.models import Entity
from portal.core.templatetags.plinth import duration, relative, when
from portal.governance import services as governance
from portal.scaffolder.models import Run
from portal.site.management.commands.devstack import Command as Devstack

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _run(user, title: str) -> Run:
    return Run.objects.create(template_ref="template:default/ml-model-service", template_title=title,
                              template_source="-", template={}, created_by=user)


def test_home_shows_my_open_requests_runs_and_recently_viewed_in_constant_queries(demo_org):
    alice = demo_org["users"]["alice"]
    client = client_for(alice)
    governance.request_create(actor=alice, action="deprecate", target="model:default/fraud-detector",
                              justification="replaced")
    _run(alice, "Fraud scorer v2")
    client.get("/catalog/model/default/fraud-detector/")
    client.get("/")
    with CaptureQueriesContext(connection) as few:
        html = client.get("/").content.decode()
    assert "#1 Deprecate" in html.split('data-testid="my-open-requests"', 1)[1].split("</div>", 1)[0]
    assert "Fraud scorer v2" in html.split('data-testid="recent-runs"', 1)[1]
    assert "Fraud detector" in html.split('data-testid="recently-viewed"', 1)[1].split("</div>", 1)[0]

    for name in ("churn-predictor", "product-ranker", "fraud-detection", "payments"):
        ref = Entity.objects.filter(name=name).values_list("kind_key", "namespace", "name").first()
        client.get(f"/catalog/{ref[0]}/{ref[1]}/{ref[2]}/")
    governance.request_create(actor=alice, action="retire", target="dataset:default/chargebacks-2025",
                              justification="old")
    for i in range(4):
        _run(alice, f"Run {i}")
    client.get("/")
    with CaptureQueriesContext(connection) as many:
        html = client.get("/").content.decode()
    viewed = html.split('data-testid="recently-viewed"', 1)[1].split("</div>", 1)[0]
    assert viewed.index("Payments") < viewed.index("Fraud detector")  # most recent first
    assert len(many.captured_queries) == len(few.captured_queries)


def test_recently_viewed_drops_what_the_user_may_no_longer_see(demo_org):
    alice = demo_org["users"]["alice"]
    client = client_for(alice)
    client.get("/catalog/model/default/fraud-detector/")
    Entity.objects.filter(ref="model:default/fraud-detector").delete()
    assert "Entities you open appear here." in client.get("/").content.decode()
    session = client.session
    assert len(session[recent.SESSION_KEY]) == 1  # kept, but shown only while visible


def test_when_renders_relative_time_with_the_exact_time_on_hover():
    moment = timezone.now() - dt.timedelta(hours=3, minutes=5)
    html = when(moment)
    assert html.startswith(f'<time datetime="{moment.astimezone(dt.UTC).isoformat(timespec="seconds")[:19]}Z" title="')
    assert "3\xa0hours ago</time>" in html and " UTC\">" in html
    assert relative(timezone.now() + dt.timedelta(days=2, hours=1)) == "in 2\xa0days"
    assert relative(timezone.now()) == "just now"
    # a 7-day token shown seconds after it was made (timeuntil alone says "in 6 days")
    now = timezone.now()
    assert relative(now + dt.timedelta(days=7) - dt.timedelta(seconds=4), now) == "in 1\xa0week"
    assert relative(now - dt.timedelta(days=3) + dt.timedelta(seconds=20), now) == "3\xa0days ago"
    assert relative(now + dt.timedelta(days=6, hours=23), now) == "in 6\xa0days"
    assert when("2026-01-02T03:04:05+00:00").count('title="2026-01-02 03:04 UTC"') == 1
    assert when(None) == "" and when("not a date") == ""


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "—"), ("", "—"), (-3, "0 s"), (0.4, "0 s"), (52, "52 s"), (60, "1 min"), (845, "14 min"),
    (2880, "48 min"), (3605, "1 h 00 min"), (3720, "1 h 02 min"), (97259, "1 d 3 h"), ("90", "1 min"),
])
def test_durations_read_in_their_two_largest_units(seconds, shown):
    assert duration(seconds) == shown


def test_relation_labels_are_human():
    assert relation_label("consumesFeatures") == "Consumes features"
    assert relation_label("apiProvidedBy") == "API provided by"
    assert relation_label("futureThingOf") == "Future thing of"
    assert all(relation_label(t)[0].isupper() and " " in relation_label(t) or t in {"childOf"}
               for pair in RELATION_PAIRS.items() for t in pair)


def test_entity_page_shows_relation_labels(demo_org):
    html = client_for(demo_org["users"]["alice"]).get("/catalog/model/default/fraud-detector/").content.decode()
    assert ">Consumes features</h3>" in html and "consumesFeatures</h3>" not in html


def test_catalog_opens_on_models_components_apis_with_the_directory_one_click_away(demo_org):
    client = client_for(demo_org["users"]["alice"])
    default = client.get("/catalog/").content.decode()
    assert "Fraud detector" in default and "/catalog/user/default/alice/" not in default
    assert '<a href="?kind=user"' in default and '<a href="?kind=all"' in default
    users = client.get("/catalog/?kind=user").content.decode()
    assert "/catalog/user/default/alice/" in users and "Fraud detector" not in users
    everything = client.get("/catalog/?kind=all").content.decode()
    assert "/catalog/user/default/alice/" in everything and "Fraud detector" in everything
    assert '<td class="owner" data-label="Owner">' in default  # the owner column does not wrap


def test_home_counts_what_teams_build_before_the_directory(demo_org):
    from catalog.selectors import DEFAULT_KINDS, kind_counts

    kinds = [row["kind_key"] for row in kind_counts(demo_org["users"]["alice"])]
    built = [k for k in kinds if k in DEFAULT_KINDS]
    assert "user" in kinds and "model" in kinds  # the demo has more users than models
    assert kinds[:len(built)] == built, kinds


def test_menu_has_no_dead_items_and_the_audit_link_follows_the_rule(demo_org):
    alice = client_for(demo_org["users"]["alice"]).get("/").content.decode()
    nav = alice.split('id="mainnav"', 1)[1].split("</nav>", 1)[0]
    # Insights is a real link now (a team member sees their team's aggregates), not a greyed-out item.
    assert '<a href="/insights/"' in nav and "nav-off" not in nav and "/reviews/audit/" not in alice
    grace = client_for(demo_org["users"]["grace"]).get("/").content.decode()
    assert 'href="/reviews/audit/"' in grace.split('id="mainnav"', 1)[1].split("</nav>", 1)[0]


@pytest.mark.parametrize("path", ["/insights/no-such-dashboard/", "/catalog/model/default/no-such-model/", "/reviews/requests/999/"])
def test_missing_pages_get_the_styled_404(demo_org, path):
    response = client_for(demo_org["users"]["alice"]).get(path)
    html = response.content.decode()
    assert response.status_code == 404
    assert 'class="error-page card"' in html and "Browse the catalog" in html and 'class="topbar"' in html


def test_styled_400_and_403(demo_org, rf):
    from portal.core import views

    request = rf.get("/catalog/")
    request.user = demo_org["users"]["alice"]
    for response, status in ((views.bad_request(request), 400), (views.permission_denied(request), 403)):
        assert response.status_code == status and 'class="error-page card"' in response.content.decode()


def test_500_page_survives_a_broken_context(rf, monkeypatch):
    from portal.core import views

    def broken(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(views, "error_response", broken)
    response = views.server_error(rf.get("/"))
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()


def test_demo_stack_serves_styled_error_pages_unless_debug_is_asked_for(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert Devstack._web_env() == {"DEBUG": "0"}
    monkeypatch.setenv("DEBUG", "1")
    assert Devstack._web_env() == {}


def test_api_references_are_inside_the_portal_frame(demo_org):
    client = client_for(demo_org["users"]["alice"])
    for path, marker in (("/api/docs/", 'id="swagger-ui"'), ("/api/redoc/", "<redoc spec-url=")):
        html = client.get(path).content.decode()
        assert marker in html and 'class="topbar"' in html and 'href="/"' in html, path
        assert "<script>" not in html  # no inline script under the CSP
