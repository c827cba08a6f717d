"""Each KPI query of portal/insights/kpis.py against rollup rows whose answers were worked out by
hand (in the comments), for the period and the one before it; and `run`'s refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portal.insights import kpis
from portal.insights.models import ActiveUserDay, EventType, Grain, Milestone, Rollup, TeamMilestone
from tests.factories import EntityFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_each_backend")]

END = datetime(2026, 11, 8, tzinfo=UTC)
PERIOD = kpis.Period.ending(END, 7)  # [1 Nov, 8 Nov); previous [25 Oct, 1 Nov)


def at(day: int, month: int = 11, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def rollup(type_, bucket, *, count, subject="", values=(), value_sum=None, team=None, grain=None):
    """A day row as the rollup writes it: `daily` for a team, `org_day` (every team) without one."""
    grain = grain or (Grain.DAILY if team else Grain.ORG_DAILY)
    return Rollup.objects.create(grain=grain, bucket=bucket, type=type_, subject=subject, count=count, team=team,
                                 values=list(values), value_count=len(values),
                                 value_sum=sum(values) if value_sum is None else value_sum)


def run(name, **params):
    return kpis.run(name, params, PERIOD)


def test_template_success_rate_and_median_duration():
    ok, failed = EventType.TEMPLATE_RUN_SUCCEEDED, EventType.TEMPLATE_RUN_FAILED
    rollup(ok, at(2), subject="template:default/a", count=6, values=[30, 70])
    rollup(ok, at(5), subject="template:default/a", count=0, values=[50])
    rollup(ok, at(6), subject="template:default/b", count=3, values=[40, 200])
    rollup(failed, at(6), subject="template:default/a", count=1, values=[5])
    rollup(ok, at(6, hour=3), subject="template:default/a", count=100, values=[1], grain=Grain.HOURLY)  # not daily
    rollup(ok, at(8), subject="template:default/a", count=50, values=[1])  # after the period
    rollup(ok, at(27, 10), subject="template:default/a", count=3, values=[100])  # previous period
    rollup(failed, at(31, 10), subject="template:default/b", count=1)
    # 9 succeeded of 10 finished; the previous period 3 of 4; template a alone: 6 of 7.
    assert run("template_success_rate") == kpis.KpiValue(90.0, 75.0)
    assert run("template_success_rate", template="template:default/a").current == 85.7
    # pooled durations 30 40 50 70 200 → 50; previous: 100 alone.
    assert run("median_template_duration") == kpis.KpiValue(50.0, 100.0)


def test_zero_result_search_share_and_click_through():
    search = EventType.SEARCH
    rollup(search, at(2), subject="gpu", count=3, values=[0, 0, 0])
    rollup(search, at(3), subject="fraud", count=5, values=[0, 4, 4, 4, 4])  # every value (sorted, as rollup.sample keeps them): one zero
    rollup(search, at(4), subject="api", count=300, values=[7] * 200, value_sum=2100)  # sampled, found things
    rollup(search, at(4), subject="kafka", count=250, values=[0] * 200, value_sum=0)  # sampled, found nothing
    rollup(search, at(5), subject="mixed", count=1000, values=[0] * 10 + [3] * 91)  # quantiles: ~10 % zero
    rollup(search, at(5), subject="old", count=7, values=[], value_sum=0)  # no sample: its sum says none found
    rollup(EventType.SEARCH_CLICK, at(4), subject="api", count=93)
    # zero: 3 + 1 + 0 + 250 + round(1000 × 10/101) = 99 + 7 = 360 of 1565 searches = 23.0 %;
    # clicks 93 / 1565 = 5.9 %; nothing before.
    assert run("zero_result_search_share") == kpis.KpiValue(23.0, None)
    assert run("search_click_through_rate") == kpis.KpiValue(5.9, None)


def test_approval_lead_time_percentiles_in_hours():
    rollup(EventType.APPROVAL_EXECUTED, at(2), subject="1", count=3, values=[3600, 7200, 36000])
    rollup(EventType.APPROVAL_EXECUTED, at(7), subject="2", count=1, values=[18000])
    rollup(EventType.APPROVAL_EXECUTED, at(30, 10), subject="0", count=1, values=[72000])
    # pooled 1 h, 2 h, 5 h, 10 h: nearest rank p50 = 2nd = 2 h, p95 = 4th = 10 h, p25 = 1st = 1 h.
    assert run("approval_lead_time") == kpis.KpiValue(2.0, 20.0)
    assert run("approval_lead_time", percentile=95).current == 10.0
    assert run("approval_lead_time", percentile=25).current == 1.0


def test_active_users_and_docs_views_per_active_user():
    u1, u2, u3, u4 = UserFactory.create_batch(4)
    team = TeamFactory()
    MembershipFactory(user=u1, team=team)
    for user, day in ((u1, date(2026, 11, 2)), (u1, date(2026, 11, 7)), (u2, date(2026, 11, 7)),
                      (u3, date(2026, 10, 31)), (u4, date(2026, 11, 8))):
        ActiveUserDay.objects.create(user=user, day=day, events=1)
    # the last 7 days [1 Nov, 8 Nov): u1, u2 (u4's 8 Nov is after); before: u3.
    assert run("weekly_active_users") == kpis.KpiValue(2, 1)
    assert run("active_users", team=team.name) == kpis.KpiValue(1, 0)
    assert run("active_users", window_days=1).current == 2  # 7 Nov only
    rollup(EventType.DOCS_VIEW, at(3), subject="a/", count=6)
    rollup(EventType.DOCS_VIEW, at(5), subject="b/", count=4)
    assert run("docs_views_per_active_user") == kpis.KpiValue(5.0, 0.0)  # 10 views / 2 users; 0 / 1


def test_event_count_overall_and_per_team():
    team = TeamFactory()
    rollup(EventType.REGISTRATION, at(2), subject="model:default/a", count=4, team=team)
    rollup(EventType.REGISTRATION, at(2), subject="model:default/a", count=4)  # its share of the org-wide row
    rollup(EventType.REGISTRATION, at(3), subject="component:default/b", count=3)
    rollup(EventType.REGISTRATION, at(29, 10), subject="component:default/c", count=2)
    assert run("event_count", type="registration") == kpis.KpiValue(7, 2)  # org_day rows only
    assert run("event_count", type="registration", team=team.name) == kpis.KpiValue(4, 0)


def test_onboarding_queries_from_milestones():
    a, b, c, d = TeamFactory.create_batch(4)
    for team, milestone, when in (
        (a, Milestone.FIRST_SIGN_IN, at(1, 10)), (a, Milestone.FIRST_MODEL, at(2, 10, hour=12)),
        (a, Milestone.FIRST_APPROVAL_EXECUTED, at(5, 10)),
        (b, Milestone.FIRST_SIGN_IN, at(20, 10)), (b, Milestone.FIRST_MODEL, at(3)),
        (c, Milestone.FIRST_SIGN_IN, at(25, 10)),
        (d, Milestone.FIRST_SIGN_IN, at(1, 6)), (d, Milestone.FIRST_MODEL, at(2, 6)),
        (d, Milestone.FIRST_APPROVAL_EXECUTED, at(10, 6)),
    ):
        TeamMilestone.objects.create(team=team, milestone=milestone, reached_at=when)
    # Cohort: first sign-in in the 90 days before 8 Nov (a, b, c; d joined in June). a took 1.5 days,
    # b 14 days (its model came on 3 Nov), c has none yet: median 7.75. Before 1 Nov only a had one: 1.5.
    assert run("median_time_to_first_model") == kpis.KpiValue(7.75, 1.5)
    assert run("median_time_to_first_model", cohort_days=10).current is None  # nobody joined after 29 Oct
    assert run("teams_reaching", milestone="first_model") == kpis.KpiValue(3, 2)
    assert run("onboarding_completion") == kpis.KpiValue(50.0, 50.0)  # a and d of four signed-in teams


def test_catalog_state_queries_have_no_history():
    a, b, c = TeamFactory.create_batch(3)
    EntityFactory(kind="Model", owner_team=a, lifecycle="production")
    EntityFactory(kind="Model", owner_team=a, lifecycle="production")
    EntityFactory(kind="Model", owner_team=b, lifecycle="experimental")
    EntityFactory(kind="Model", owner_team=None, lifecycle="production")
    EntityFactory(kind="Component", owner_team=c, lifecycle="production")
    EntityFactory(kind="Group", owner_team=None)  # groups and users are not counted for ownership
    assert run("teams_with_model_in_production") == kpis.KpiValue(1, None)
    assert run("owned_entity_share") == kpis.KpiValue(80.0, None)  # 4 of 5


@pytest.mark.parametrize(("name", "params", "message"), [
    ("no_such_query", {}, "unknown query 'no_such_query'"),
    ("approval_lead_time", {"pct": 50}, "has no parameter pct (accepts: percentile)"),
    ("approval_lead_time", {"percentile": "50"}, "must be a whole number, not '50'"),
    ("approval_lead_time", {"percentile": True}, "must be a whole number"),
    ("approval_lead_time", {"percentile": 0}, "between 1 and 100"),
    ("event_count", {}, "needs the parameter 'type'"),
    ("event_count", {"type": "coffee"}, "unknown event type 'coffee'"),
    ("event_count", {"type": "search", "team": "nobody"}, "unknown team 'nobody'"),
    ("teams_reaching", {"milestone": "first_coffee"}, "unknown milestone 'first_coffee'"),
    ("active_users", {"window_days": 400}, "between 1 and 366 days"),
])
def test_run_refuses_what_the_query_cannot_answer(name, params, message):
    with pytest.raises(kpis.KpiError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kpis.run(name, params, PERIOD)


def test_leading_zeros_of_a_sample_read_from_its_json_text():
    """The zero-result share counts a sorted sample's leading zeros from the JSON text, whatever the
    number's spelling (SQLite keeps json.dumps text, PostgreSQL its own jsonb text)."""
    from portal.insights.kpis import _zeros_and_length

    assert _zeros_and_length("[0.0, 0.0, 3.0]") == (2, 3)
    assert _zeros_and_length("[0,0,0]") == (3, 3)
    assert _zeros_and_length("[0e0, -0.0, 0.01, 5]") == (2, 4)
    assert _zeros_and_length("[0.5, 1]") == (0, 2)
    assert _zeros_and_length("[ 0 , 10 ]") == (1, 2)
    assert _zeros_and_length("[]") == (0, 0)
