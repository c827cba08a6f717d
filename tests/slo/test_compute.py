"""The SLO arithmetic without Prometheus: calendar windows are as long as the time that really passes in
them, so on a daylight-saving day a `1d` window in Europe/Berlin is 23 or 25 hours, not 24."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.slo import compute, openslo

from .conftest import SEARCH_SLO

HOUR = 3600
ROLLING_DAY = "    - duration: 1d\n      isRolling: true\n"


def calendar_spec(duration: str, *, method: str = "Timeslices") -> openslo.Spec:
    """search-hours (1h slices, target 0.9) over a calendar window in Europe/Berlin."""
    text = SEARCH_SLO.replace(ROLLING_DAY, f"    - {{duration: {duration}, isRolling: false, "
                                           "calendar: {timeZone: Europe/Berlin}}\n")
    if method == "RatioTimeslices":
        text = text.replace("budgetingMethod: Timeslices", "budgetingMethod: RatioTimeslices")
        text = text.replace("      timeSliceTarget: 0.95\n", "")
    (spec,), errors = openslo.parse(text, "slo.yaml")
    assert not errors
    return spec


@pytest.mark.parametrize(("duration", "now", "hours"), [
    ("1d", datetime(2026, 3, 29, 21, 59, tzinfo=UTC), 23),  # clocks go forward at 02:00: 23:59 CEST
    ("1d", datetime(2026, 10, 25, 22, 59, tzinfo=UTC), 25),  # clocks go back at 03:00: 23:59 CET
    ("1d", datetime(2026, 3, 28, 22, 59, tzinfo=UTC), 24),  # the day before: an ordinary day
    ("1w", datetime(2026, 3, 29, 21, 59, tzinfo=UTC), 7 * 24 - 1),
    ("1M", datetime(2026, 10, 31, 22, 59, tzinfo=UTC), 31 * 24 + 1),
])
def test_a_calendar_window_is_as_long_as_the_time_that_passes_in_it(duration, now, hours):
    """Before, the length was end − start on the local clock (always 24 h for a day): on 29 March the
    window's 23 hours counted as 24, on 25 October the elapsed time (up to 25 h) outran the window."""
    rng, elapsed, whole = compute.window_range(calendar_spec(duration), now)
    assert whole == hours * HOUR
    assert elapsed == hours * HOUR - 60 and rng == f"{hours * HOUR - 60}s"  # one minute before the end


@pytest.mark.parametrize(("now", "hours"), [(datetime(2026, 3, 29, 21, 59, tzinfo=UTC), 23),
                                            (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), 25)])
def test_time_budgets_on_daylight_saving_days_count_the_real_hours(now, hours):
    """Allowed: 10 % of the day. With every slice good the whole of it is left: 2.3 h on a 23-hour day,
    2.5 h on a 25-hour one (before: 2.4 h both, about 4 % off)."""
    timeslices = compute.outcome(calendar_spec("1d"), {"sli": 1.0, "count": hours}, now, "1m")
    assert timeslices.budget_remaining == 1
    assert (timeslices.budget_amount, timeslices.budget_unit) == (pytest.approx(0.1 * hours * HOUR), "seconds")
    # RatioTimeslices with a mean slice ratio of 0.95: half the budget (5 % of 10 %) is spent.
    ratio = compute.outcome(calendar_spec("1d", method="RatioTimeslices"), {"sli": 0.95, "count": hours}, now, "1m")
    assert ratio.budget_remaining == pytest.approx(0.5)
    assert ratio.budget_amount == pytest.approx(0.5 * 0.1 * hours * HOUR)
