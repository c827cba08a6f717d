"""Insights never name what the reader may not read. A rollup row is kept under the team the event was
recorded for, which is not always the owner of what it names: the scaffolder records a run under the
run's team (portal/scaffolder/services.py, `run_create`), so a recsys run of fraud-ml's private template
lands in recsys's rows. Top templates, entities and docs leave such refs out — in the pages, their CSV
and the API — and say how many they left out."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from catalog.models import Entity
from portal.accounts import services as account_services
from portal.accounts.models import Membership, Role
from portal.insights import capture, rollup

pytestmark = pytest.mark.django_db

REF = "template:default/feature-set"


def _api(user) -> Client:
    _, raw = account_services.token_create(user=user, name="insights")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def private_run(demo_org, capture_buffer, settings, tmp_path):
    """fraud-ml's private feature-set template, dry-run by dan for recsys (his first team; he is also a
    fraud-ml member, so he may use it), captured and rolled up as the beat does."""
    from portal.scaffolder import services as scaffolder_services
    from portal.scaffolder.templates import from_entity

    settings.PLINTH_SCAFFOLDER_ROOT = tmp_path / "scaffolder"
    teams, users = demo_org["teams"], demo_org["users"]
    Entity.objects.filter(ref=REF).update(owner_team=teams["fraud-ml"], visibility="private")
    Membership.objects.create(user=users["dan"], team=teams["fraud-ml"], role=Role.MEMBER)
    entity = Entity.objects.get(ref=REF)
    scaffolder_services.run_create(template=from_entity(entity), entity=entity, actor=users["dan"],
                                   parameters={"name": "orders-features", "owner": "recsys"}, secret_values={},
                                   dry_run=True, owner_team=teams["recsys"])
    assert capture.flush_now() >= 1
    rollup.rollup_day(timezone.now().date())
    return demo_org


def test_a_team_page_never_names_another_teams_private_template(private_run):
    users = private_run["users"]
    carol = _browser(users["carol"])  # recsys only
    assert carol.get("/catalog/template/default/feature-set/").status_code == 404
    for slug in ("/insights/usage/", "/insights/"):
        page = carol.get(slug, {"days": 7})
        assert page.status_code == 200
        html = page.content.decode()
        assert "feature-set" not in html and "Feature set" not in html, slug
        assert 'data-testid="not-shown-templates"' in html and "1 template not shown" in html, slug
    usage = carol.get("/insights/usage/", {"days": 7}).context["data"]
    assert usage["templates"] == [] and usage["not_shown"]["templates"] == 1
    rows = list(csv.reader(io.StringIO(carol.get("/insights/usage/", {"days": 7, "format": "csv"}).content.decode())))
    assert not [r for r in rows if any("feature-set" in cell for cell in r)]
    assert ["not shown", "templates", "1"] in rows


def test_the_api_and_its_csv_leave_it_out_and_count_it(private_run):
    users = private_run["users"]
    carol = _api(users["carol"])
    body = carol.get("/api/v1/insights/events?type=top_templates").json()
    assert body["data"] == [] and body["not_shown"] == 1
    csv_response = carol.get("/api/v1/insights/events?type=top_templates&format=csv")
    assert csv_response.status_code == 200 and "feature-set" not in csv_response.content.decode()
    assert csv_response["X-Plinth-Not-Shown"] == "1"
    for type_ in ("top_entities", "top_docs"):
        assert "not_shown" in carol.get(f"/api/v1/insights/events?type={type_}").json()


def test_readers_who_may_see_it_still_do(private_run):
    users = private_run["users"]
    dan = _api(users["dan"]).get("/api/v1/insights/events?type=top_templates").json()  # a fraud-ml member
    assert [t["entityref"] for t in dan["data"]] == [REF] and dan["not_shown"] == 0
    admin = _browser(users["grace"]).get("/insights/usage/", {"days": 7})
    assert [t["entityref"] for t in admin.context["data"]["templates"]] == [REF]
    assert 'data-testid="not-shown-templates"' not in admin.content.decode()
