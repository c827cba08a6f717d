"""The header chip and the SLOs tab tell the same story (red only for a page alert or a missed objective,
amber for a ticket alert or stale figures); the tab's counts are whole with thousands separators; the
charts' history is thinned over time (duplicates of one minute become one point) and drawn on a time axis
with the objective as a dashed line. No Prometheus: the SLO rows are written as an evaluation leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.test import Client

from catalog.models import Entity
from portal.slo import selectors
from portal.slo.models import SLO, Evaluation
from portal.slo.templatetags.slo import budget_amount, count, events_line

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 12, 4, 10, 30, tzinfo=UTC)
MODEL = "model:default/fraud-detector"


def alerts(*firing: str) -> list[dict]:
    """The four multi-window alerts, those of the given severities holding."""
    out = []
    for severity, threshold, long, short in (("page", 14.4, "1h", "5m"), ("page", 6.0, "6h", "30m"),
                                             ("ticket", 3.0, "1d", "2h"), ("ticket", 1.0, "3d", "6h")):
        out.append({"severity": severity, "threshold": threshold, "long": long, "short": short, "long_burn": 4.4,
                    "short_burn": 4.4, "firing": severity in firing})
    return out


def slo(entity, name, *, sli=0.99666, target=0.995, firing=(), problem="", **extra) -> SLO:
    return SLO.objects.create(
        entity=entity, name=name, objective="objective-0", title=name.title(), spec={"source": "./slo.yaml",
                                                                                     "window": {"rolling": True}},
        target=target, budgeting="Occurrences", window="28d", sli=sli, good=extra.pop("good", 2009145.0),
        total=extra.pop("total", 2015875.0), budget_remaining=extra.pop("budget", 0.332), budget_unit="events",
        budget_amount=extra.pop("amount", 3349.8), burn={"1h": 4.4, "6h": 4.4, "1d": 3.09, "3d": 2.9},
        alerts=alerts(*firing), evaluated_at=T0, checked_at=T0, problem=problem, **extra)


def chip(demo_org) -> str:
    c = Client()
    c.force_login(demo_org["users"]["alice"])
    page = c.get("/catalog/model/default/fraud-detector/").content.decode()
    start = page.index('data-testid="slo-badge"')
    return page[page.rindex("<a", 0, start):page.index("</a>", start) + 4]


def test_a_ticket_alert_is_amber_and_says_so(demo_org):
    entity = Entity.objects.get(ref=MODEL)
    slo(entity, "availability", firing=("ticket",))
    slo(entity, "latency", sli=0.999, target=0.99, budget=0.9)
    badge = selectors.badge(entity)
    assert (badge["meeting"], badge["missed"], badge["severity"], badge["tone"]) == (2, 0, "ticket", "warn")
    html = chip(demo_org)
    assert 'class="badge badge-warn"' in html
    assert ">SLOs 2/2 meeting · budget 33 % · ticket alert holding</a>" in html
    assert "a ticket burn-rate alert holds" in html and "fastest burn rate over 1h 4.40×" in html


@pytest.mark.parametrize(("rows", "tone", "text"), [
    ([{}], "ok", "SLOs 1/1 meeting · budget 33 %"),
    ([{"firing": ("page", "ticket")}], "err", "SLOs 1/1 meeting · budget 33 % · page alert holding"),
    ([{"sli": 0.99}, {}], "err", "SLOs 1/2 meeting · budget 33 %"),  # a missed objective
    ([{"problem": "unreachable"}], "warn", "SLOs 1/1 meeting · budget 33 % · 1 stale"),
    ([{"sli": None, "budget": None, "problem": "no_data"}], "warn", "SLOs 0/1 meeting · 1 stale"),
])
def test_the_chip_colour_follows_the_gravest_state(demo_org, rows, tone, text):
    entity = Entity.objects.get(ref=MODEL)
    for i, row in enumerate(rows):
        slo(entity, f"slo-{i}", **row)
    html = chip(demo_org)
    assert f'class="badge badge-{tone}"' in html and f">{text}</a>" in html, html


def test_the_tab_counts_are_whole_with_separators(demo_org):
    entity = Entity.objects.get(ref=MODEL)
    row = slo(entity, "availability", firing=("ticket",))
    c = Client()
    c.force_login(demo_org["users"]["alice"])
    page = c.get("/catalog/model/default/fraud-detector/slos/").content.decode()
    assert "2,009,145 good of 2,015,875 events" in page and "≈ 3,350 events" in page
    assert "are estimates, rounded to whole events" in page  # the budget's count is fractional: said on hover
    row.good, row.total = 2009145.4, 2015875.0
    assert events_line(row) == "≈ 2,009,145 good of 2,015,875 events"
    assert count(70.0) == "70" and count(1288) == "1,288" and count(3349.8) == "≈ 3,350" and count(None) == "—"
    row.budget_amount = -12.4
    assert budget_amount(row) == "≈ -12 events"


def test_the_history_is_thinned_over_time():
    rows = [SimpleNamespace(at=T0 + timedelta(hours=6 * i)) for i in range(12)]
    end = T0 + timedelta(hours=72)
    rows += [SimpleNamespace(at=end), SimpleNamespace(at=end + timedelta(seconds=20)),
             SimpleNamespace(at=end + timedelta(minutes=1))]
    kept = selectors._thin(rows, 60)
    assert [r.at for r in kept] == [r.at for r in rows[:12]] + [end + timedelta(minutes=1)]
    five_minutes = [SimpleNamespace(at=T0 + timedelta(minutes=5 * i)) for i in range(12 * 24)]  # a day
    kept = selectors._thin(five_minutes, 25)
    assert len(kept) == 25 and kept[0] is five_minutes[0] and kept[-1] is five_minutes[-1]
    gaps = {(b.at - a.at) for a, b in zip(kept[1:], kept[2:], strict=False)}
    assert gaps == {timedelta(minutes=60)}  # evenly over time
    same = [SimpleNamespace(at=T0) for _ in range(3)]
    assert selectors._thin(same, 10) == [same[-1]]  # one minute's evaluations: the latest


def test_the_charts_use_time_and_draw_the_objective(demo_org):
    entity = Entity.objects.get(ref=MODEL)
    row = slo(entity, "availability", firing=("ticket",))
    for i, (hours, sli, budget) in enumerate([(0, 0.998, 0.6), (6, 0.9975, 0.5), (12, 0.997, 0.4), (72, 0.9967, -0.1)]):
        Evaluation.objects.create(slo=row, at=T0 + timedelta(hours=hours, seconds=i), sli=sli, budget_remaining=budget)
    (item,) = selectors.entity_slos(entity)["slos"]
    sli, budget = item["sli_chart"], item["budget_chart"]
    xs = [p.x for p in sli.points]
    assert (xs[1] - xs[0]) == pytest.approx(xs[2] - xs[1], abs=0.2) and (xs[3] - xs[2]) > 9 * (xs[1] - xs[0])
    assert [r.label for r in sli.refs] == ["objective 99.50 %"] and sli.table.rows[0] == ["2025-12-04 10:30", "99.800"]
    assert [r.label for r in budget.refs] == ["0 %: budget spent"]
    assert [t.label for t in budget.ticks] == ["-100", "0", "100"] and budget.table.rows[-1][1] == "-10.0"
    c = Client()
    c.force_login(demo_org["users"]["alice"])
    page = c.get("/catalog/model/default/fraud-detector/slos/").content.decode()
    assert page.count('<line class="ref"') == 2 and page.count("Times in UTC") == 2
