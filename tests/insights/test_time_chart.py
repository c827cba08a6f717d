"""charts.time_chart: x proportional to time (not to the points' rank), labels at round UTC times that stay
inside the SVG, dashed reference lines with their labels, and a data table in UTC. line_chart is unchanged
(the pages calling it render as before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.template.loader import render_to_string

from portal.insights import charts

T0 = datetime(2025, 12, 4, 10, 30, tzinfo=UTC)
INNER = charts.WIDTH - charts.PAD_LEFT - charts.PAD_RIGHT


def six_hourly_then_minutes() -> list[tuple[datetime, float]]:
    """The demo's history: every six hours for three days, then two evaluations a minute apart."""
    series = [(T0 + timedelta(hours=6 * i), 99.8 - i / 100) for i in range(12)]
    end = T0 + timedelta(hours=72)
    return [*series, (end, 99.68), (end + timedelta(minutes=1), 99.666)]


def test_x_is_proportional_to_time():
    series = six_hourly_then_minutes()
    chart = charts.time_chart("sli", "SLI (%)", series, unit="per cent", low=98)
    xs = [p.x for p in chart.points]
    assert xs[0] == charts.PAD_LEFT and xs[-1] == charts.WIDTH - charts.PAD_RIGHT
    span = (series[-1][0] - series[0][0]).total_seconds()
    for (t, _), x in zip(series, xs, strict=True):
        assert x == pytest.approx(charts.PAD_LEFT + (t - T0).total_seconds() / span * INNER, abs=0.06)
    steps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert max(steps[:11]) - min(steps[:11]) <= 0.11  # six hours apart: equal steps
    assert steps[-1] <= 0.25 and steps[-1] < steps[0] / 100  # a minute apart: next to each other, not a step apart
    assert chart.previous == "" and chart.x_caption == "Times in UTC"


def test_an_uneven_series_is_not_evenly_spaced():
    """Three points at 0 h, 1 h and 4 h: the middle one is a quarter of the way, not half."""
    series = [(T0, 1), (T0 + timedelta(hours=1), 2), (T0 + timedelta(hours=4), 3)]
    chart = charts.time_chart("u", "U", series, unit="events")
    assert chart.points[1].x == pytest.approx(charts.PAD_LEFT + INNER / 4, abs=0.06)


def test_times_are_utc_whatever_the_zone_given():
    paris = timezone(timedelta(hours=1))
    chart = charts.time_chart("z", "Z", [(datetime(2025, 12, 4, 12, 0, tzinfo=paris), 1),
                                         (datetime(2025, 12, 5, 12, 0, tzinfo=paris), 2)], unit="events")
    assert chart.table.headers == ["Time (UTC)", "Events"]
    assert chart.table.rows[0] == ["2025-12-04 11:00", "1"] and chart.points[0].label == "2025-12-04 11:00 UTC"
    assert "from 2025-12-04 11:00 to 2025-12-05 11:00 UTC" in chart.desc


def test_labels_fall_on_round_utc_times_and_stay_inside():
    chart = charts.time_chart("sli", "SLI (%)", six_hourly_then_minutes(), unit="per cent", low=98)
    labels = chart.x_labels
    assert 3 <= len(labels) <= charts.MAX_X_LABELS
    span = 72 * 3600 + 60
    # 12-hour steps from midnight: 12:00 on the 4th, then midnight (the date) and noon.
    assert [x.label for x in labels] == ["12:00", "05 Dec", "12:00", "06 Dec", "12:00", "07 Dec"]
    first = T0.replace(hour=12, minute=0)
    for i, x in enumerate(labels):
        at = first + timedelta(hours=12 * i)
        assert x.x == pytest.approx(charts.PAD_LEFT + (at - T0).total_seconds() / span * INNER, abs=0.06)
    # On a phone the labels that are not dates give way.
    assert [x.minor for x in labels] == [True, False, True, False, True, False]
    for x in labels:
        width = len(x.label) * charts.X_LABEL_CHAR
        left = {"start": x.x, "middle": x.x - width / 2, "end": x.x - width}[x.anchor]
        assert left >= 0 and left + width <= charts.WIDTH
    extents = []
    for x in labels:
        width = len(x.label) * charts.X_LABEL_CHAR
        left = {"start": x.x, "middle": x.x - width / 2, "end": x.x - width}[x.anchor]
        extents.append((left, left + width))
    assert all(b[0] >= a[1] + charts.X_LABEL_GAP for a, b in zip(extents, extents[1:], strict=False))  # none touch


def test_a_long_first_label_never_touches_the_next():
    """A span without a midnight: the first label carries its date, and a label it would touch gives way."""
    series = [(T0 + timedelta(minutes=10 * i), 1) for i in range(9)]  # 10:30 to 11:50
    labels = charts.time_chart("m", "M", series, unit="events").x_labels
    assert labels[0].label == "04 Dec 10:30" and labels[0].anchor == "start"
    assert all(":" in x.label and len(x.label) == 5 for x in labels[1:])
    first_end = labels[0].x + len(labels[0].label) * charts.X_LABEL_CHAR
    assert labels[1].x - len(labels[1].label) * charts.X_LABEL_CHAR / 2 >= first_end + charts.X_LABEL_GAP


def test_short_and_long_spans_pick_their_steps():
    hour = [(T0 + timedelta(minutes=5 * i), 1) for i in range(13)]
    labels = [x.label for x in charts.time_chart("h", "H", hour, unit="events").x_labels]
    assert labels[0] == "04 Dec 10:30" and all(len(x) == 5 for x in labels[1:])  # "10:45", "11:00"…
    weeks = [(T0 + timedelta(days=i), 1) for i in range(60)]
    long = charts.time_chart("w", "W", weeks, unit="events").x_labels
    assert len(long) <= charts.MAX_X_LABELS and all(x.label[2:] in (" Dec", " Jan", " Feb") for x in long)
    single = charts.time_chart("s", "S", [(T0, 5)], unit="events")
    assert single.points[0].x == charts.PAD_LEFT + INNER / 2 and len(single.x_labels) == 1


def test_reference_lines_and_their_labels():
    series = six_hourly_then_minutes()
    chart = charts.time_chart("sli", "SLI (%)", series, unit="per cent", low=98, digits=3,
                              refs=[(99.5, "objective 99.50 %")])
    top, bottom = charts.PAD_TOP, charts.HEIGHT - charts.PAD_BOTTOM
    (ref,) = chart.refs
    assert ref.y == pytest.approx(top + (100 - 99.5) / 2 * (bottom - top), abs=0.06)
    assert ref.label_y > ref.y  # the SLI ends above its objective: the label sits below the line
    assert "objective 99.50 %" in chart.desc and chart.table.rows[-1] == ["2025-12-07 10:31", "99.666"]
    missing = charts.time_chart("m", "M", [(T0, 99.8), (T0 + timedelta(hours=1), 99.2)], unit="per cent", low=98,
                                refs=[(99.5, "objective")])
    assert missing.refs[0].label_y < missing.refs[0].y  # ends below: the label goes above
    budget = charts.time_chart("b", "B", [(T0, 60), (T0 + timedelta(hours=1), 33)], unit="per cent",
                               refs=[(0, "0 %")])
    assert budget.refs[0].y == bottom and budget.refs[0].label_y < bottom  # on the axis: the label above it
    spent = charts.time_chart("o", "O", [(T0, 10), (T0 + timedelta(hours=1), -25)], unit="per cent", low=-100,
                              high=100, refs=[(0, "0 %")])
    assert [t.label for t in spent.ticks] == ["-100", "0", "100"]
    assert spent.refs[0].y == pytest.approx((top + bottom) / 2) and spent.points[-1].y > spent.refs[0].y


def test_the_template_draws_reference_lines_and_says_utc():
    chart = charts.time_chart("sli", "SLI (%)", six_hourly_then_minutes(), unit="per cent", low=98,
                              refs=[(99.5, "objective 99.50 %")])
    html = render_to_string("insights/inc/chart_line.html", {"chart": chart})
    assert html.count('class="ref"') == 1 and "objective 99.50 %</text>" in html
    assert "Times in UTC" in html and "<th scope=\"col\">Time (UTC)</th>" in html
    assert 'class="tick x-tick first"' not in html  # the first label keeps its anchor at its time


def test_line_chart_renders_as_before():
    """line_chart's callers (Insights, costs) see no reference line, no caption, the same geometry."""
    chart = charts.line_chart("x", "X", [("a", 0), ("b", 10), ("c", 5)], unit="users")
    assert chart.refs == [] and chart.x_caption == ""
    assert [p.x for p in chart.points] == [charts.PAD_LEFT, charts.PAD_LEFT + INNER / 2, charts.WIDTH - charts.PAD_RIGHT]
    html = render_to_string("insights/inc/chart_line.html", {"chart": chart})
    assert 'class="ref"' not in html and "UTC" not in html and 'class="legend"' not in html
    assert 'class="tick x-tick first"' in html
