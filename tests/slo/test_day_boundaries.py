"""Calendar SLO windows on days with a daylight-saving change, in real zoneinfo zones: a day runs from its
first instant to the next day's, so it lasts the 23 or 25 hours that pass, also where the change is at
midnight (00:00 does not happen, or happens twice) — docs/operations.md, "Calendar windows"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.slo.compute import window_range
from portal.slo.openslo import Window, parse

HOUR = 3600

# (zone, a moment in UTC, the local day's first instant in UTC, its hours). Midnight changes: Havana falls
# back 01:00 → 00:00 (midnight happens twice), Santiago and Beirut spring forward 00:00 → 01:00 (midnight
# does not happen) and fall back 00:00 → 23:00 the evening before (that day lasts 25 h).
DAYS = [
    ("America/Havana", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 4, tzinfo=UTC), 25),
    ("America/Havana", datetime(2026, 11, 1, 4, 30, tzinfo=UTC), datetime(2026, 11, 1, 4, tzinfo=UTC), 25),
    ("America/Havana", datetime(2026, 3, 8, 12, tzinfo=UTC), datetime(2026, 3, 8, 5, tzinfo=UTC), 23),
    ("America/Santiago", datetime(2026, 9, 6, 4, 30, tzinfo=UTC), datetime(2026, 9, 6, 4, tzinfo=UTC), 23),
    ("America/Santiago", datetime(2026, 4, 5, 3, 30, tzinfo=UTC), datetime(2026, 4, 4, 3, tzinfo=UTC), 25),
    ("Asia/Beirut", datetime(2026, 3, 28, 22, 30, tzinfo=UTC), datetime(2026, 3, 28, 22, tzinfo=UTC), 23),
    ("Asia/Beirut", datetime(2026, 10, 24, 21, 30, tzinfo=UTC), datetime(2026, 10, 23, 21, tzinfo=UTC), 25),
    ("Europe/Berlin", datetime(2026, 3, 29, 12, tzinfo=UTC), datetime(2026, 3, 28, 23, tzinfo=UTC), 23),
    ("Europe/Berlin", datetime(2026, 10, 25, 12, tzinfo=UTC), datetime(2026, 10, 24, 22, tzinfo=UTC), 25),
    ("America/New_York", datetime(2026, 3, 8, 12, tzinfo=UTC), datetime(2026, 3, 8, 5, tzinfo=UTC), 23),
    ("America/New_York", datetime(2026, 11, 1, 12, tzinfo=UTC), datetime(2026, 11, 1, 4, tzinfo=UTC), 25),
]


@pytest.mark.parametrize(("tz", "now", "start", "hours"), DAYS,
                         ids=[f"{tz}-{now:%m-%dT%H:%M}" for tz, now, _, _ in DAYS])
def test_a_calendar_day_starts_at_its_first_instant_and_lasts_the_hours_that_pass(tz, now, start, hours):
    got_start, got_end = Window(text="1d", rolling=False, unit="d", tz=tz).bounds(now)
    assert got_start.astimezone(UTC) == start
    assert got_end.astimezone(UTC) == start + timedelta(hours=hours)
    assert got_start <= now < got_end


def test_the_error_budget_of_a_day_where_midnight_happens_twice_counts_25_hours():
    """Half past midnight the second time in Havana (1 November 2026): 90 minutes of the day have passed
    (the first 00:00–01:00 and half of the second), and the day is 25 hours long."""
    (spec,), errors = parse(CALENDAR_DAY.replace("ZONE", "America/Havana"), "slo.yaml")
    assert not errors, errors
    rng, elapsed, whole = window_range(spec, datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    assert (rng, elapsed, whole) == ("5400s", 5400, 25 * HOUR)


def test_the_error_budget_of_a_day_without_midnight_counts_23_hours():
    """Half past one in Santiago on 6 September 2026 (the clock went from 00:00 to 01:00): 30 minutes have
    passed, and the day is 23 hours long."""
    (spec,), errors = parse(CALENDAR_DAY.replace("ZONE", "America/Santiago"), "slo.yaml")
    assert not errors, errors
    assert window_range(spec, datetime(2026, 9, 6, 4, 30, tzinfo=UTC)) == ("1800s", 1800, 23 * HOUR)


@pytest.mark.parametrize("unit", ["w", "M"])
def test_weeks_and_months_that_begin_on_a_doubled_midnight_begin_at_the_first(unit):
    """Sunday 1 November 2026 in Havana is a month's first day; its week (from Monday 26 October) is not
    changed, but the month begins at the first 00:00, also when asked during the second one."""
    start, end = Window(text=f"1{unit}", rolling=False, unit=unit, tz="America/Havana").bounds(
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    if unit == "M":
        assert (start.astimezone(UTC), end.astimezone(UTC)) == (datetime(2026, 11, 1, 4, tzinfo=UTC),
                                                                datetime(2026, 12, 1, 5, tzinfo=UTC))
    else:
        assert (start.astimezone(UTC), end.astimezone(UTC)) == (datetime(2026, 10, 26, 4, tzinfo=UTC),
                                                                datetime(2026, 11, 2, 5, tzinfo=UTC))


@pytest.mark.parametrize("tz", ["America/Havana", "America/Santiago", "Asia/Beirut", "Europe/Berlin",
                                "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"])
def test_every_hour_of_years_with_changes_lies_in_a_day_that_starts_on_that_local_date(tz):
    """Each day's start is on that local date and one second earlier is the day before, every half hour
    of 2011 (Samoa skipped 30 December) to 2012 and of 2026 (Lord Howe moves its clock by half an hour)."""
    zone, window = ZoneInfo(tz), Window(text="1d", rolling=False, unit="d", tz=tz)
    for year in (2011, 2026):
        now = datetime(year, 1, 1, tzinfo=UTC)
        while now.year == year:
            start, end = window.bounds(now)
            day = now.astimezone(zone).date()
            assert start <= now < end, (tz, now)
            assert start.astimezone(zone).date() == day > (start.astimezone(UTC) - timedelta(seconds=1)).astimezone(zone).date()
            assert end.astimezone(zone).date() > day == (end.astimezone(UTC) - timedelta(seconds=1)).astimezone(zone).date()
            now += timedelta(minutes=30)


CALENDAR_DAY = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: checkout-errors}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(increase(ok_total[{{.window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(increase(all_total[{{.window}}]))'}}}
  timeWindow:
    - duration: 1d
      isRolling: false
      calendar: {startTime: "2026-01-01 00:00:00", timeZone: ZONE}
  objectives:
    - displayName: 99 % of requests
      target: 0.99
"""
