"""The demo series `make run` serves (portal/slo/demo.py) on a real Prometheus: built once and reused
while fresh, and the demo SLOs evaluate to the figures the generator's rates give, worked out by hand:

* fraud-detector availability (target 99.5 %, budget 0.5 %): 2.2 % errors in the last six hours → burn
  4.4 over 1h and 6h; 1.4 % for the 2.75 days before → about 3 over 1d and 3d (the daily traffic cycle
  weighs the hours); 0.2 % before. Over 28 days (25 × 0.2 % + 2.75 × 1.4 % + 0.25 × 2.2 %) / 28 ≈ 0.336 %
  bad, so about 1 − 0.336 / 0.5 ≈ 33 % of the budget is left. The ticket alerts (3 over 1d/2h, 1 over
  3d/6h) hold, the page alerts (14.4, 6) do not.
* fraud-scoring-service (99.9 %, 0.03 % errors throughout): burn 0.3 everywhere, 70 % left.
* product-ranker (99 %, 0.1 % errors): burn 0.1, 90 % left.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catalog import demo as catalog_demo
from portal.slo import demo as slo_demo
from portal.slo.models import SLO, Evaluation

pytestmark = pytest.mark.django_db


def test_blocks_are_built_once_and_rebuilt_when_stale(tmp_path):
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    first = slo_demo.ensure_blocks(tmp_path, now=now)
    assert first.built and first.anchor == now and any(first.data_dir.iterdir())
    again = slo_demo.ensure_blocks(tmp_path, now=now + timedelta(hours=slo_demo.REUSE_HOURS - 1))
    assert not again.built and again.anchor == now  # reused: devstack starts fast
    later = slo_demo.ensure_blocks(tmp_path, now=now + timedelta(hours=slo_demo.REUSE_HOURS + 1))
    assert later.built and later.anchor == now + timedelta(hours=slo_demo.REUSE_HOURS + 1)
    assert not (tmp_path / "demo-series.om").exists()  # the OpenMetrics source is not kept


def test_no_slow_slice_falls_near_the_anchor_whatever_the_hour():
    """The latency histogram's slow slices come every 18 hours, but none in the twelve hours before the
    anchor or after it: the 1h/6h burn rates the badge shows are the availability SLO's at any hour of
    the day the series are made (a CI run once failed when a slow slice fell in the last hour)."""
    start = int(datetime(2026, 12, 3, tzinfo=UTC).timestamp())
    slow_seen = 0
    for anchor in range(start, start + 18 * 3600, 300):  # every 5-minute phase of the 18-hour cycle
        near = [slo_demo._slow_fraction(ts, anchor - ts) for ts in range(anchor - 12 * 3600, anchor + 86400, 60)]
        assert set(near) == {0.003}, datetime.fromtimestamp(anchor, UTC)
        slow_seen += slo_demo._slow_fraction(anchor - 13 * 3600, 13 * 3600) == 0.03
    assert slow_seen == 1  # earlier, the slow slices are there: one phase of the cycle in 216


def test_the_demo_slos_evaluate_on_the_demo_series(demo_org, demo_prometheus_url, settings):
    settings.PLINTH_PROMETHEUS_URL = demo_prometheus_url
    catalog_demo.load_catalog()
    stats = slo_demo.evaluate()
    assert stats == {"entities": 3, "file_errors": 0, "evaluated": 4, "problems": 0}, stats
    rows = {(s.entity.ref, s.name): s for s in SLO.objects.select_related("entity")}
    burning = rows[("model:default/fraud-detector", "scoring-availability")]
    assert burning.burn["1h"] == pytest.approx(4.4, rel=1e-3)
    assert burning.burn["6h"] == pytest.approx(4.4, rel=1e-3)
    assert 2.8 < burning.burn["1d"] < 3.6 and 2.8 < burning.burn["3d"] < 3.3, burning.burn
    assert 0.30 < burning.budget_remaining < 0.36, burning.budget_remaining
    firing = {(a["severity"], a["threshold"]) for a in burning.alerts if a["firing"]}
    assert firing == {("ticket", 3.0), ("ticket", 1.0)}
    latency = rows[("model:default/fraud-detector", "scoring-latency")]
    assert latency.sli is not None and latency.sli >= latency.target, latency.sli  # met
    assert latency.burn["1h"] == 0 and latency.burn["6h"] == 0, latency.burn  # no slow slice near the anchor
    service = rows[("component:default/fraud-scoring-service", "http-availability")]
    assert service.budget_remaining == pytest.approx(0.70, abs=1e-3)
    assert service.burn["1h"] == pytest.approx(0.3, rel=1e-2)
    ranker = rows[("model:default/product-ranker", "ranking-availability")]
    assert ranker.budget_remaining == pytest.approx(0.90, abs=1e-3)
    # The first load also evaluated the last three days every six hours: the burning budget went down.
    history = list(Evaluation.objects.filter(slo=burning).order_by("at").values_list("budget_remaining", flat=True))
    assert len(history) == slo_demo.HISTORY_POINTS + 1
    # Three days ago the 28 days were all at 0.2 % errors: 1 − 0.2 / 0.5 = 60 % left; then it only goes down.
    assert history[0] == pytest.approx(0.6, abs=0.01) and history[-1] < 0.36, history
    assert history == sorted(history, reverse=True), history
    slo_demo.evaluate()
    assert Evaluation.objects.filter(slo=burning).count() == slo_demo.HISTORY_POINTS + 2  # no second backfill
