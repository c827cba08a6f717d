"""The Insights pages: the numbers they show (from rollup rows made here with known values), who sees
what, bad filters answered with a 400 naming the field, CSV downloads escaped against formula
injection, and a constant number of queries per dashboard whatever the size of the data."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts.models import Role
from portal.insights import selectors
from portal.insights.models import ActiveUserDay, EventType, Grain, Milestone, Rollup, TeamMilestone
from portal.techdocs.models import DocSite
from tests.factories import EntityFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SLUGS = ("overview", "active-users", "funnel", "usage", "searches", "governance", "catalog-health")
INJECTION = "=cmd|' /C calc'!A0"


def url(slug: str) -> str:
    return "/insights/" if slug == "overview" else f"/insights/{slug}/"


def today() -> date:
    return timezone.now().date()


def at(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def rollup(type_: str, days_ago: int, team, subject: str, count: int, *, users: int = 1, value_sum: float = 0,
           value_count: int = 0, values: list | None = None) -> Rollup:
    """A team's daily row, and the same numbers added to the organisation-wide row of that day, type and
    subject (as the rollup task writes both; the whole-organisation view reads the latter)."""
    bucket = at(today() - timedelta(days=days_ago))
    org, _ = Rollup.objects.get_or_create(grain=Grain.ORG_DAILY, bucket=bucket, type=type_, team=None, subject=subject)
    org.count += count
    org.users += users
    org.value_sum += value_sum
    org.value_count += value_count
    org.values = sorted([*org.values, *(values or [])])
    org.save()
    return Rollup.objects.create(grain=Grain.DAILY, bucket=bucket, type=type_, team=team, subject=subject,
                                 count=count, users=users, value_sum=value_sum, value_count=value_count,
                                 values=values or [])


@pytest.fixture
def org():
    ml, risk = TeamFactory(name="ml-platform", title="ML Platform"), TeamFactory(name="risk", title="Risk")
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    alice, bob, carol = UserFactory(username="alice"), UserFactory(username="bob"), UserFactory(username="carol")
    MembershipFactory(user=alice, team=ml, role=Role.MEMBER)
    MembershipFactory(user=bob, team=risk, role=Role.VIEWER)
    return {"ml": ml, "risk": risk, "admin": admin, "alice": alice, "bob": bob, "carol": carol}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def week() -> dict:
    """The last 7 days as explicit filters."""
    return {"start": (today() - timedelta(days=6)).isoformat(), "end": today().isoformat()}


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode(), newline="")))


# -- the numbers ---------------------------------------------------------------------------------


def test_active_users_overall_per_team_and_trend(org):
    """Two users active this week against one the week before: 2, +100%; per team 1 and 1; a member of
    ml-platform sees only ml-platform's people."""
    for days_ago in (0, 1, 3):
        ActiveUserDay.objects.create(day=today() - timedelta(days=days_ago), user=org["alice"], events=4)
    ActiveUserDay.objects.create(day=today() - timedelta(days=2), user=org["bob"], events=1)
    ActiveUserDay.objects.create(day=today() - timedelta(days=9), user=org["alice"], events=2)
    ActiveUserDay.objects.create(day=today() - timedelta(days=40), user=org["bob"], events=2)  # outside both

    page = client_for(org["admin"]).get("/insights/active-users/", week())
    html = page.content.decode()
    assert 'data-testid="active-total">2<' in html and "▲ 100.0%" in html
    data = page.context["data"]
    assert (data["au"].total, data["au"].previous_total, data["au"].trend_pct) == (2, 1, 100.0)
    teams = {t["team"]: (t["users"], t["previous"]) for t in data["per_team"]}
    assert teams == {"ml-platform": (1, 1), "risk": (1, 0)}
    series = data["tables"][0][2]
    assert [row[1] for row in series] == [0, 0, 0, 1, 1, 1, 1]  # every day of the week, zeros included
    assert [row[3] for row in series] == [0, 0, 0, 0, 1, 0, 0]  # the previous week, day by day (9 days ago)
    assert data["charts"][0].previous  # drawn dashed

    mine = client_for(org["alice"]).get("/insights/active-users/", week()).context["data"]
    assert (mine["au"].total, mine["au"].previous_total, [t["team"] for t in mine["per_team"]]) == (
        1, 1, ["ml-platform"])

    weekly = client_for(org["admin"]).get("/insights/active-users/", {**week(), "grouping": "weekly"})
    assert len(weekly.context["data"]["tables"][0][2]) in (1, 2)  # 7 days span one or two weeks
    rows = read_csv(client_for(org["admin"]).get("/insights/active-users/", {**week(), "format": "csv"}))
    assert rows[0] == ["table", "period", "users", "new users", "previous period"]
    assert rows[7][2] == "1" and len([r for r in rows if r and r[0] == "active users"]) == 7


def test_top_templates_runs_success_rate_and_median(org):
    """Runs summed over days, success rate of finished runs, median duration of the successful runs."""
    ml = org["ml"]
    rollup(EventType.TEMPLATE_RUN_STARTED, 1, ml, "template:default/ml-model-service", 3)
    rollup(EventType.TEMPLATE_RUN_STARTED, 2, ml, "template:default/ml-model-service", 2)
    rollup(EventType.TEMPLATE_RUN_SUCCEEDED, 1, ml, "template:default/ml-model-service", 3, values=[10, 20, 30],
           value_sum=60, value_count=3)
    rollup(EventType.TEMPLATE_RUN_FAILED, 2, ml, "template:default/ml-model-service", 1)
    rollup(EventType.TEMPLATE_RUN_STARTED, 1, org["risk"], "template:default/feature-set", 2)
    rollup(EventType.TEMPLATE_RUN_STARTED, 30, ml, "template:default/old", 50)  # before the period

    response = client_for(org["admin"]).get("/insights/usage/", week())
    templates = response.context["data"]["templates"]
    assert [(t["entityref"], t["count"], t["succeeded"], t["failed"]) for t in templates] == [
        ("template:default/ml-model-service", 5, 3, 1), ("template:default/feature-set", 2, 0, 0)]
    assert templates[0]["success_pct"] == 75.0 and templates[0]["median_duration_s"] == 20
    assert templates[1]["success_pct"] is None
    html = response.content.decode()
    assert "75.0%" in html and "20 s" in html and 'data-testid="chart-templates"' in html
    # The member of risk sees risk's template only, and only while it is in the catalog for them.
    EntityFactory(kind="Template", name="feature-set")
    mine = client_for(org["bob"]).get("/insights/usage/", week()).context["data"]["templates"]
    assert [t["entityref"] for t in mine] == ["template:default/feature-set"]


def test_top_entities_and_docs(org):
    EntityFactory(kind="Model", name="fraud-detector", owner_team=org["ml"])
    EntityFactory(kind="Component", name="plinth", owner_team=org["ml"], visibility="private")
    rollup(EventType.ENTITY_VIEW, 0, org["ml"], "model:default/fraud-detector", 7, users=3)
    rollup(EventType.ENTITY_VIEW, 1, org["ml"], "model:default/fraud-detector", 5, users=4)
    rollup(EventType.ENTITY_VIEW, 1, org["ml"], "component:default/plinth", 9, users=2)
    rollup(EventType.DOCS_VIEW, 1, org["ml"], "component:default/plinth/guide/", 4, users=2)
    data = client_for(org["alice"]).get("/insights/usage/", week()).context["data"]
    assert [(e["entityref"], e["count"], e["user_days"]) for e in data["entities"]] == [
        ("model:default/fraud-detector", 12, 7), ("component:default/plinth", 9, 2)]
    assert [(d["entityref"], d["page"], d["count"]) for d in data["docs"]] == [
        ("component:default/plinth", "guide/", 4)]


def test_top_entities_chart_names_and_links_what_the_reader_may_see(org):
    """The charts show an entity's title, linked to its page (a docs page: the title and the page,
    linked to it while the page exists). A ref whose entity is another team's private one, or is gone
    (it may have been private: the two look alike), is left out of the charts, tables and CSV, and
    counted; a platform admin still sees a gone entity's ref, as recorded and unlinked. The data tables
    and CSV keep refs."""
    detector = EntityFactory(kind="Model", name="fraud-detector", title="Fraud detector", owner_team=org["ml"])
    site = DocSite.objects.create(entity=detector, status="ok", page_count=1)
    site.pages.create(path="guide/", source_path="guide.md", title="Guide", order=0)
    EntityFactory(kind="Model", name="secret-model", title="Secret plans", owner_team=org["risk"], visibility="private")
    rollup(EventType.ENTITY_VIEW, 1, org["ml"], "model:default/fraud-detector", 5)
    rollup(EventType.ENTITY_VIEW, 1, org["ml"], "model:default/secret-model", 4)  # as if its team had moved
    rollup(EventType.ENTITY_VIEW, 1, org["ml"], "model:default/deleted-since", 3)
    EntityFactory(kind="Template", name="ml-svc", title="ML model service", owner_team=org["ml"])
    rollup(EventType.TEMPLATE_RUN_STARTED, 1, org["ml"], "template:default/ml-svc", 2)
    rollup(EventType.DOCS_VIEW, 1, org["ml"], "model:default/fraud-detector/guide/", 6)
    rollup(EventType.DOCS_VIEW, 1, org["ml"], "model:default/fraud-detector/", 5)
    rollup(EventType.DOCS_VIEW, 1, org["ml"], "model:default/secret-model/", 2)
    rollup(EventType.DOCS_VIEW, 1, org["ml"], "model:default/fraud-detector/removed-since/", 1)
    response = client_for(org["alice"]).get("/insights/usage/", week())
    chart = next(c for c in response.context["data"]["charts"] if c.key == "entities")
    assert [(b.label, b.url) for b in chart.bars] == [("Fraud detector", "/catalog/model/default/fraud-detector/")]
    assert response.context["data"]["not_shown"] == {"templates": 0, "entities": 2, "docs": 1}
    page = response.content.decode()
    assert "secret-model" not in page and "deleted-since" not in page
    assert "2 entities not shown" in page and "1 docs page not shown" in page
    assert 'data-testid="not-shown-templates"' not in page
    assert '<a href="/catalog/model/default/fraud-detector/"><text class="bar-label"' in page
    templates = next(c for c in response.context["data"]["charts"] if c.key == "templates")
    assert [(b.label, b.url) for b in templates.bars] == [("ML model service", "/catalog/template/default/ml-svc/")]
    docs = next(c for c in response.context["data"]["charts"] if c.key == "docs")
    assert [(b.label, b.url) for b in docs.bars] == [
        ("Fraud detector › guide/", "/docs/model/default/fraud-detector/guide/"),
        ("Fraud detector › home", "/docs/model/default/fraud-detector/"),
        ("Fraud detector › removed-since/", "")]
    assert "Secret plans" not in page
    rows = read_csv(client_for(org["alice"]).get("/insights/usage/", {**week(), "format": "csv"}))
    assert ["entities", "model:default/fraud-detector", "5", "1"] in rows
    assert not [r for r in rows if any("secret-model" in c or "deleted-since" in c for c in r)]
    assert ["not shown", "entities", "2"] in rows and ["not shown", "docs", "1"] in rows
    # A platform admin sees everything recorded: the private entity by its title, a gone one by its ref.
    admin = next(c for c in client_for(org["admin"]).get("/insights/usage/", week()).context["data"]["charts"]
                 if c.key == "entities")
    assert [(b.label, b.url) for b in admin.bars] == [
        ("Fraud detector", "/catalog/model/default/fraud-detector/"),
        ("Secret plans", "/catalog/model/default/secret-model/"), ("model:default/deleted-since", "")]


def test_searches_top_zero_results_and_csv_injection(org):
    """Top queries with clicks and mean results; queries with days on which they found nothing are
    listed as zero-result; in the CSV a query starting with = is prefixed with an apostrophe."""
    ml = org["ml"]
    rollup(EventType.SEARCH, 0, ml, "fraud", 6, value_sum=30, value_count=6)
    rollup(EventType.SEARCH, 1, ml, "fraud", 4, value_sum=20, value_count=4)
    rollup(EventType.SEARCH_CLICK, 1, ml, "fraud", 3, value_sum=3, value_count=3)
    rollup(EventType.SEARCH, 1, ml, INJECTION, 4, value_sum=0, value_count=4)
    rollup(EventType.SEARCH, 2, ml, "churn", 2, value_sum=0, value_count=2)
    rollup(EventType.SEARCH, 3, ml, "churn", 1, value_sum=2, value_count=1)

    response = client_for(org["admin"]).get("/insights/searches/", week())
    data = response.context["data"]
    assert [(r["query"], r["count"], r["zero_result_count"], r["clicks"], r["mean_results"]) for r in data["top"]] == [
        ("fraud", 10, 0, 3, 5.0), (INJECTION, 4, 4, 0, 0.0), ("churn", 3, 2, 0, 0.67)]
    assert [(r["query"], r["count"]) for r in data["zero"]] == [(INJECTION, 4), ("churn", 2)]
    assert data["total"] == 17
    html = response.content.decode()
    assert "=cmd|&#x27; /C calc&#x27;!A0" in html  # escaped in HTML as anywhere
    assert 'data-testid="chart-search-volume"' in html

    rows = read_csv(client_for(org["admin"]).get("/insights/searches/", {**week(), "format": "csv"}))
    cells = [cell for row in rows for cell in row]
    assert "'" + INJECTION in cells and INJECTION not in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or c[:1] == "-" and not c[1:2].isdigit()]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"])
def test_every_csv_section_escapes_cells_that_start_a_formula(text):
    """The section name and every text cell; numbers stay numbers (-3 is not a formula)."""
    from portal.insights.export import tables_to_csv

    rows = list(csv.reader(io.StringIO(tables_to_csv([(text, ["h"], [[text, 5, -3]]), ("b", ["x"], [["ok"]])]), newline="")))
    assert rows == [["table", "h"], ["'" + text, "'" + text, "5", "-3"], [], ["table", "x"], ["b", "ok"]]


def test_funnel_steps_and_time_to_first_model(org):
    """ml-platform was created 6 days ago and registered its first model 4 days later; risk is old and
    only ever signed in."""
    from portal.accounts.models import Team

    ml, risk = org["ml"], org["risk"]
    now = timezone.now().replace(microsecond=0)
    Team.objects.filter(pk=ml.pk).update(created_at=now - timedelta(days=6))
    Team.objects.filter(pk=risk.pk).update(created_at=now - timedelta(days=200))
    for milestone, days_ago in ((Milestone.FIRST_SIGN_IN, 5), (Milestone.FIRST_SEARCH, 4),
                                (Milestone.FIRST_REGISTRATION, 3), (Milestone.FIRST_MODEL, 2)):
        TeamMilestone.objects.create(team=ml, milestone=milestone, reached_at=now - timedelta(days=days_ago))
    TeamMilestone.objects.create(team=risk, milestone=Milestone.FIRST_SIGN_IN, reached_at=now - timedelta(days=100))

    response = client_for(org["admin"]).get("/insights/funnel/", {"days": 30})
    fn = response.context["data"]["funnel"]
    assert [(s["label"], s["teams"]) for s in fn.steps] == [
        ("First sign-in", 2), ("First search", 1), ("First registered entity", 1), ("First template run", 0),
        ("First approval executed", 0), ("First registered model", 1)]
    # ml-platform never ran a template, so its model counts as reached but not through every step: the
    # bars never grow down the funnel, and the skipped team is named beside its step.
    assert [s["in_order"] for s in fn.steps] == [2, 1, 1, 0, 0, 0]
    stages = response.context["data"]["charts"][0].stages
    assert [(s.label, s.value) for s in stages][:2] == [("All teams", 2), ("First sign-in", 2)]  # shares of all
    assert [(s.value, s.skipped) for s in stages[1:]] == [(2, 0), (1, 0), (1, 0), (0, 0), (0, 0), (0, 1)]
    assert "First registered model — 0 (0.0%) · +1 skipped a step" in response.content.decode()
    assert fn.time_to_first_model == {"teams_joined": 1, "teams": 1, "median_days": 4.0, "p95_days": 4.0}
    html = response.content.decode()
    assert 'data-testid="funnel-median">4.0 d<' in html and '<title id="funnel-t">' in html
    rows = {r["team"]: r["steps"] for r in response.context["data"]["team_rows"]}
    assert rows["ml-platform"][0] == (now - timedelta(days=5)).date().isoformat() and rows["risk"][1] == ""
    # Only alice's team for alice.
    mine = client_for(org["alice"]).get("/insights/funnel/").context["data"]["team_rows"]
    assert [t["team"] for t in mine] == ["ml-platform"]


def _request(org, workflow: str, *, submitted_days_ago: int, hours: float, stage: str, **extra):
    from portal.governance.models import ApprovalRequest, Stage

    submitted = timezone.now() - timedelta(days=submitted_days_ago)
    req = ApprovalRequest.objects.create(
        action="promote-model-version", target_ref="model:default/fraud", owner_team=org["ml"],
        requester=org["alice"], workflow_name=workflow, state=extra.pop("state", "executed"),
        submitted_at=submitted, closed_at=submitted + timedelta(hours=hours), **extra)
    Stage.objects.create(request=req, index=0, name=stage, started_at=submitted,
                         completed_at=submitted + timedelta(hours=hours))
    return req


def test_governance_flow_lead_times_breaches_and_gates(org):
    from portal.governance.models import PolicyResult

    one = _request(org, "promote-model-version", submitted_days_ago=3, hours=2, stage="Risk review")
    two = _request(org, "promote-model-version", submitted_days_ago=2, hours=10, stage="Risk review", escalated=True)
    three = _request(org, "grant-access", submitted_days_ago=1, hours=0.5, stage="Data owner", state="expired")
    for req, gate, enforcement in ((one, "model_card", "block"), (two, "model_card", "block"),
                                   (three, "ownership", "warn")):
        PolicyResult.objects.create(request=req, gate=gate, policy_file="p.rego", policy_hash="h", passed=False,
                                    enforcement=enforcement)

    data = client_for(org["admin"]).get("/insights/governance/", week()).context["data"]
    assert [(s["workflow"], s["stage"], s["count"], s["p50_hours"], s["p95_hours"]) for s in data["stages"]] == [
        ("grant-access", "Data owner", 1, 0.5, 0.5), ("promote-model-version", "Risk review", 2, 2.0, 10.0)]
    assert [(w["workflow"], w["submitted"], w["escalated"], w["expired"]) for w in data["workflows"]] == [
        ("grant-access", 1, 0, 1), ("promote-model-version", 2, 1, 0)]
    assert data["gates"] == [{"gate": "model_card", "count": 2}]
    assert (data["decided"], data["breaches"]) == (3, 2)
    rows = read_csv(client_for(org["admin"]).get("/insights/governance/", {**week(), "format": "csv"}))
    assert ["stages", "promote-model-version", "Risk review", "2", "2.0", "10.0"] in rows
    # Another team sees none of it.
    assert client_for(org["bob"]).get("/insights/governance/", week()).context["data"]["stages"] == []


def test_catalog_health_per_team(org):
    ml = org["ml"]
    documented = EntityFactory(name="documented", owner_team=ml)
    DocSite.objects.create(entity=documented, status="ok", page_count=3)
    EntityFactory(name="undocumented", owner_team=ml)
    EntityFactory(kind="Model", name="churn", owner_team=ml, spec_type="classifier")
    carded = EntityFactory(kind="Model", name="fraud", owner_team=ml, spec_type="classifier")
    carded.data["spec"]["modelCard"] = "docs/model-card.md"
    carded.save()
    DocSite.objects.create(entity=carded, status="ok", page_count=1)
    carded.model_versions.create(version="1", version_number=1, created_at_mlflow=timezone.now() - timedelta(days=2))
    EntityFactory(name="nobodys")

    admin = client_for(org["admin"]).get("/insights/catalog-health/").context["data"]
    assert [(t["team"], t["entities"], t["without_docs"], t["models"], t["models_without_card"],
             t["models_without_recent_run"]) for t in admin["teams"]] == [("ml-platform", 4, 2, 2, 1, 1)]
    assert admin["unowned"] == 1
    response = client_for(org["alice"]).get("/insights/catalog-health/")
    assert response.context["data"]["unowned"] is None
    assert 'data-testid="health-unowned"' not in response.content.decode()
    assert client_for(org["bob"]).get("/insights/catalog-health/").context["data"]["teams"] == []


# -- filters and bad input -------------------------------------------------------------------------


def test_presets_and_team_filter(org):
    rollup(EventType.SEARCH, 20, org["ml"], "old-but-in-30-days", 1, value_sum=1, value_count=1)
    admin = client_for(org["admin"])
    assert [r["query"] for r in admin.get("/insights/searches/").context["data"]["top"]] == ["old-but-in-30-days"]
    assert admin.get("/insights/searches/", {"days": 7}).context["data"]["top"] == []
    f = admin.get("/insights/searches/", {"days": 90, "team": "risk"}).context["f"]
    assert (f.period.days, f.team.name) == (90, "risk")
    assert admin.get("/insights/searches/", {"team": "risk"}).context["data"]["top"] == []


def _bad_cases() -> list[tuple[dict, str]]:
    t = today()
    return [
        ({"start": t.isoformat(), "end": (t - timedelta(days=3)).isoformat()}, "is after end"),
        ({"start": "1925-01-01", "end": t.isoformat()}, "at most 366"),
        ({"start": "yesterday", "end": t.isoformat()}, "start: enter a date as YYYY-MM-DD"),
        ({"start": "2026-02-31", "end": t.isoformat()}, "start: enter a date"),
        ({"start": t.isoformat()}, "give both dates"),
        ({"end": (t + timedelta(days=2)).isoformat(), "start": t.isoformat()}, "in the future"),
        ({"team": "no-such-team"}, "no team named &#x27;no-such-team&#x27;"),
        ({"grouping": "hourlyish"}, "grouping: choose daily, weekly or monthly"),
        ({"days": "5"}, "days: choose 7, 30 or 90 days"),
        ({"days": "';DROP TABLE x"}, "days: choose 7, 30 or 90 days"),
        ({"format": "xlsx"}, "format: &#x27;xlsx&#x27; is not a format"),
        # The comparison period before it overflowed date arithmetic (a 500 before 2026-12-07).
        ({"start": "0001-01-01", "end": "0001-01-05"}, "start (0001-01-01) is outside 1900-01-01 to 2999-12-31"),
    ]


@pytest.mark.parametrize("slug", ["active-users", "governance"])
@pytest.mark.parametrize(("params", "message"), _bad_cases())
def test_bad_filters_answer_400_naming_the_field(org, slug, params, message):
    response = client_for(org["admin"]).get(f"/insights/{slug}/", params)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="filter-errors"' in html and message in html
    assert 'name="start"' in html  # the form is there to correct it


def test_bad_filters_in_a_csv_request_answer_400_text(org):
    response = client_for(org["admin"]).get("/insights/searches/", {"format": "csv", "team": "nope"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert "team: no team named 'nope'" in response.content.decode()


def test_another_teams_name_is_refused_like_an_unknown_one(org):
    """alice (ml-platform) asking for risk's numbers gets the unknown-team answer, not risk's data."""
    mine = client_for(org["alice"]).get("/insights/usage/", {"team": "risk"})
    unknown = client_for(org["alice"]).get("/insights/usage/", {"team": "zzz"})
    assert mine.status_code == unknown.status_code == 400
    assert "no team named &#x27;risk&#x27;" in mine.content.decode()


# -- who sees what ---------------------------------------------------------------------------------


def test_who_may_open_insights_and_sees_the_menu_entry(org):
    assert Client().get("/insights/").status_code == 302
    carol = client_for(org["carol"])  # no team: nothing to aggregate for her
    assert carol.get("/insights/").status_code == 403
    assert ">Insights</a>" not in carol.get("/").content.decode()
    for who in ("alice", "bob", "admin"):
        client = client_for(org[who])
        assert client.get("/insights/").status_code == 200
        assert ">Insights</a>" in client.get("/").content.decode()
    assert client_for(org["alice"]).post("/insights/").status_code == 405


def test_search_analytics_link_only_for_platform_admins(org):
    assert "/search/insights/" in client_for(org["admin"]).get("/insights/searches/").content.decode()
    assert "/search/insights/" not in client_for(org["alice"]).get("/insights/searches/").content.decode()


# -- charts and accessibility ----------------------------------------------------------------------


def test_every_chart_has_title_desc_and_a_data_table(org):
    ActiveUserDay.objects.create(day=today(), user=org["alice"], events=1)
    rollup(EventType.SEARCH, 0, org["ml"], "fraud", 2, value_sum=2, value_count=2)
    for slug in SLUGS:
        html = client_for(org["admin"]).get(url(slug)).content.decode()
        svgs = html.count("<svg")
        assert svgs == html.count('role="img" tabindex="0"'), slug
        assert svgs == html.count("<desc id=") == html.count('<details class="chart-data">'), slug
        assert "{#" not in html and "{%" not in html, slug  # no template comment leaks into the page


def test_line_chart_geometry():
    from portal.insights import charts

    chart = charts.line_chart("x", "X", [("a", 0), ("b", 10), ("c", 5)], unit="users", previous=[2, 2, 2])
    top, bottom = charts.PAD_TOP, charts.HEIGHT - charts.PAD_BOTTOM
    assert [p.y for p in chart.points] == [bottom, top, (top + bottom) / 2]
    assert chart.points[0].x == charts.PAD_LEFT and chart.points[-1].x == charts.WIDTH - charts.PAD_RIGHT
    assert chart.area.endswith("Z") and chart.previous.startswith("M")
    assert [t.label for t in chart.ticks] == ["0", "5", "10"]
    assert chart.table.rows[1] == ["b", "10", "2"]
    assert charts.nice_ceiling(7) == 10 and charts.nice_ceiling(130) == 200 and charts.nice_ceiling(0) == 1


def test_line_chart_x_labels_stay_inside_and_never_overlap():
    """The last date label ends at the last point (centred there it ran out of the SVG and was cut:
    "11-30 12" for "11-30 12:30"); the first starts at the first; long labels are fewer, so they fit."""
    from portal.insights import charts

    hours = [(f"11-{29 + (h + 12) // 24} {(h + 12) % 24:02d}:30", 99.5) for h in range(21)]
    chart = charts.line_chart("slo", "SLI", hours, unit="per cent")
    labels = chart.x_labels
    assert labels[-1].label == "11-30 08:30" and labels[-1].x == chart.points[-1].x and labels[-1].anchor == "end"
    assert {x.anchor for x in labels[:-1]} == {"middle"}
    width = len(hours[0][0]) * charts.X_LABEL_CHAR
    assert all(b.x - a.x >= width for a, b in zip(labels, labels[1:-1], strict=False))
    assert labels[-1].x - labels[-2].x >= 1.5 * width  # the end-anchored last one and its neighbour
    days = charts.line_chart("d", "D", [(f"{d:02d} Nov", d) for d in range(1, 31)], unit="users")
    assert len(days.x_labels) == charts.MAX_X_LABELS and [x.minor for x in days.x_labels[:3]] == [False, True, False]
    assert all(x.x + len(x.label) * charts.X_LABEL_CHAR / 2 <= charts.WIDTH for x in days.x_labels
               if x.anchor == "middle")


def test_a_bar_value_too_long_for_its_bar_moves_to_the_label_line():
    """Anchored at the end of a bar shorter than itself, a value ran out of the SVG on the left and lost
    its leading number ("no docs · 0 no card"): it goes inside, after the bar or on the label's line."""
    from portal.insights import charts

    gaps = charts.bar_chart("h", "H", [("fraud-ml", 15, "12 no docs · 1 no card · 2 stale"),
                                       ("platform", 9, "9 no docs · 0 no card · 0 stale"),
                                       ("tiny", 1, "1 no docs · 0 no card · 0 stale")], unit="gaps")
    assert [b.place for b in gaps.bars] == ["inside", "label", "after"]
    short = charts.bar_chart("s", "S", [("a", 4, "4 (±0%)"), ("b", 2, "2 (±0%)"), ("c", 1, "1")], unit="users")
    assert [b.place for b in short.bars] == ["inside", "inside", "after"]


def test_bar_and_funnel_geometry():
    from portal.insights import charts

    bars = charts.bar_chart("b", "B", [("x", 40, "40"), ("y", 10, "10"), ("z", 0, "0")], unit="runs")
    assert [b.percent for b in bars.bars] == [100, 25, 0] and bars.height == 3 * charts.BAR_ROW
    funnel = charts.funnel_chart("f", "F", [("a", 10), ("b", 5), ("c", 0)], unit="teams")
    assert [(s.percent, s.x, s.rate) for s in funnel.stages] == [(100, 0, 100), (50, 25, 50), (1, 49.5, 0)]
    skipping = charts.funnel_chart("f", "F", [("a", 4, 0), ("b", 2, 3)], unit="teams")
    assert [s.skipped for s in skipping.stages] == [0, 3] and skipping.table.rows[1] == ["b", "2", "50%", "3"]
    assert skipping.desc == "a: 4 teams (100%); b: 2 teams (50%), and 3 more that skipped an earlier step."


# -- query counts ----------------------------------------------------------------------------------


def _grow(org, scale: int) -> None:
    """`scale` × a bit of everything, spread over teams, days and subjects."""
    from portal.governance.models import PolicyResult

    teams = [org["ml"], org["risk"], *[TeamFactory(name=f"grow-{scale}-{i}") for i in range(scale)]]
    users = [UserFactory(username=f"grow-{scale}-{i}") for i in range(scale * 2)]
    for i, user in enumerate(users):
        MembershipFactory(user=user, team=teams[i % len(teams)])
        for d in range(0, 10, 2):
            ActiveUserDay.objects.get_or_create(day=today() - timedelta(days=d + i % 3), user=user)
    for i in range(scale * 3):
        team = teams[i % len(teams)]
        for days_ago in (0, 2, 9):
            rollup(EventType.TEMPLATE_RUN_STARTED, days_ago, team, f"template:default/t{scale}-{i}", 2)
            rollup(EventType.TEMPLATE_RUN_SUCCEEDED, days_ago, team, f"template:default/t{scale}-{i}", 1, values=[5],
                   value_sum=5, value_count=1)
            rollup(EventType.SEARCH, days_ago, team, f"q{scale}-{i}", 3, value_sum=i, value_count=3)
            rollup(EventType.SEARCH_CLICK, days_ago, team, f"q{scale}-{i}", 1)
            rollup(EventType.ENTITY_VIEW, days_ago, team, f"component:default/e{scale}-{i}", 2)
            rollup(EventType.DOCS_VIEW, days_ago, team, f"component:default/e{scale}-{i}/x/", 2)
        EntityFactory(name=f"h{scale}-{i}", owner_team=team)
        req = _request({**org, "ml": team}, f"wf{i % 3}", submitted_days_ago=i % 5 + 1, hours=i + 1, stage=f"s{i}")
        PolicyResult.objects.create(request=req, gate=f"g{i % 4}", policy_file="p.rego", policy_hash="h",
                                    passed=False)
    for team in teams:
        for step, milestone in enumerate(Milestone.values):
            TeamMilestone.objects.get_or_create(team=team, milestone=milestone,
                                                defaults={"reached_at": timezone.now() - timedelta(days=step)})


@pytest.mark.parametrize("who", ["admin", "alice"])
def test_query_count_does_not_grow_with_the_data(org, who, django_assert_num_queries):
    """Each dashboard (page and CSV) makes the same number of queries at two data sizes."""
    client = client_for(org[who])
    _grow(org, 1)
    counts = {}
    for slug in SLUGS:
        for extra in ({}, {"format": "csv"}):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url(slug), {"days": 30, **extra}).status_code == 200
            counts[slug, bool(extra)] = len(ctx.captured_queries)
    _grow(org, 6)
    for (slug, as_csv), n in counts.items():
        with django_assert_num_queries(n):
            client.get(url(slug), {"days": 30, **({"format": "csv"} if as_csv else {})})


def test_a_user_in_two_teams_counts_once_per_team_and_only_for_teams_in_scope(org):
    """frank-like users belong to two teams: each team counts them; a scope of one team lists only it."""
    MembershipFactory(user=org["alice"], team=org["risk"], role=Role.REVIEWER)
    ActiveUserDay.objects.create(day=today(), user=org["alice"], events=1)
    everyone = client_for(org["admin"]).get("/insights/active-users/", week()).context["data"]
    assert everyone["au"].total == 1
    assert {t["team"]: t["users"] for t in everyone["per_team"]} == {"ml-platform": 1, "risk": 1}
    only_ml = client_for(org["admin"]).get("/insights/active-users/", {**week(), "team": "ml-platform"}).context["data"]
    assert [(t["team"], t["users"]) for t in only_ml["per_team"]] == [("ml-platform", 1)]
    assert only_ml["au"].total == 1


@pytest.mark.prod_smoke
@pytest.mark.parametrize("who", ["admin", "alice"])
def test_dashboards_on_postgresql(org, who, django_assert_num_queries):
    """The production backend: every dashboard renders, with the same numbers of queries at two sizes."""
    if not os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is not set; `make test` runs this subset against PostgreSQL")
    assert connection.vendor == "postgresql"
    test_query_count_does_not_grow_with_the_data(org, who, django_assert_num_queries)


def test_weekly_and_monthly_active_users_and_the_shared_activity_read(org):
    """WAU and MAU count users active in the range's last 7 and 30 days; the page's one read of who was
    active gives the same numbers as the selectors reading it themselves (the API's way)."""
    from portal.insights import selectors

    end = today()
    for user, days_ago in (("alice", 0), ("alice", 20), ("bob", 10), ("carol", 40), ("bob", 70)):
        ActiveUserDay.objects.create(day=end - timedelta(days=days_ago), user=org[user], events=1)
    start = end - timedelta(days=59)
    au = selectors.active_users(start, end)
    assert (au.total, au.wau, au.mau, au.previous_total) == (3, 1, 2, 1)
    shared = selectors.active_users(start, end, activity=selectors.user_activity(start, end))
    assert shared == au
    assert selectors.active_users_per_team(start, end, activity=selectors.user_activity(start, end)) == (
        selectors.active_users_per_team(start, end))
    mine = selectors.active_users(start, end, team=[org["ml"].pk])
    assert (mine.total, mine.wau, mine.mau) == (1, 1, 1)


def test_time_to_first_model_counts_from_a_teams_first_step_when_that_came_before_it_was_created(org):
    """A team made (by org sync, or the demo) after its people had signed in: its wait starts at its
    first step, never a negative number of days."""
    from portal.accounts.models import Team

    ml = org["ml"]
    now = timezone.now().replace(microsecond=0)
    Team.objects.filter(pk=ml.pk).update(created_at=now - timedelta(hours=1))
    TeamMilestone.objects.create(team=ml, milestone=Milestone.FIRST_SIGN_IN, reached_at=now - timedelta(days=20))
    TeamMilestone.objects.create(team=ml, milestone=Milestone.FIRST_MODEL, reached_at=now - timedelta(days=5))
    fn = selectors.funnel(team=[ml.pk], start=(now - timedelta(days=29)).date(), end=now.date())
    assert fn.time_to_first_model["median_days"] == 15.0 and fn.time_to_first_model["teams_joined"] == 1
    page = client_for(org["admin"]).get("/insights/funnel/", {"days": 30})
    started = {r["team"]: r["joined"] for r in page.context["data"]["team_rows"]}
    assert started["ml-platform"] == (now - timedelta(days=20)).date().isoformat()  # its first step, not its creation
    assert 'data-label="Started"' in page.content.decode()
