"""The dashboards' filters (date range or preset, team, grouping), read from the query string.

Bad input never reaches a selector: `read_filters` raises `FilterError` with one message per field,
naming the field and what is wrong, and the page answers 400 with the form to correct it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django import forms

from portal.accounts.models import Team

# The pages group by day, week or month; hourly series are the API's (`grouping=hourly`).
GROUPINGS = ("daily", "weekly", "monthly")
PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366  # a year and a day: longer ranges are the API's job, at monthly grouping
# Dates a range may start and end on: the comparison period before a range, a bucket's end after it,
# are computed by date arithmetic that overflows near the years 1 and 9999 (500s before 2026-12-07).
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


class FilterError(ValueError):
    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


class FilterForm(forms.Form):
    start = forms.DateField(required=False, input_formats=["%Y-%m-%d"],
                            error_messages={"invalid": "enter a date as YYYY-MM-DD"})
    end = forms.DateField(required=False, input_formats=["%Y-%m-%d"],
                          error_messages={"invalid": "enter a date as YYYY-MM-DD"})
    days = forms.TypedChoiceField(required=False, coerce=int, choices=[(d, d) for d in PRESETS],
                                  error_messages={"invalid_choice": "choose 7, 30 or 90 days"})
    team = forms.CharField(required=False, max_length=100)
    grouping = forms.ChoiceField(required=False, choices=[(g, g) for g in GROUPINGS],
                                 error_messages={"invalid_choice": "choose daily, weekly or monthly"})


@dataclass(frozen=True)
class Period:
    """A closed range of whole UTC days, `start` to `end` inclusive."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        """The period of the same length just before this one (for trends)."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def buckets(self, grouping: str) -> list[date]:
        """Every bucket start (day, Monday, first of the month) in the period, so that a bucket
        without activity shows as zero rather than as a gap."""
        out: list[date] = []
        day = self.start
        while day <= self.end:
            start = (day if grouping == "daily" else day - timedelta(days=day.weekday()) if grouping == "weekly"
                     else day.replace(day=1))
            if not out or out[-1] != start:
                out.append(start)
            day += timedelta(days=1)
        return out


@dataclass(frozen=True)
class Filters:
    period: Period
    team: Team | None  # one team chosen, else every team in the viewer's scope
    grouping: str
    preset: int | None  # the preset the range came from, to mark it as current

    def scope(self, team_ids: list[int] | None) -> list[int] | None:
        """The team ids the selectors read: the chosen team, else the viewer's scope."""
        return [self.team.pk] if self.team else team_ids

    def query(self, **changes) -> str:
        """The query string of these filters (with `changes`), for links and the CSV download."""
        from django.http import QueryDict

        params = QueryDict(mutable=True)
        values = {"start": self.period.start.isoformat(), "end": self.period.end.isoformat(),
                  "team": self.team.name if self.team else "", "grouping": self.grouping} | changes
        if "days" in changes:
            values.pop("start"), values.pop("end")
        for key, value in values.items():
            if value not in ("", None):
                params[key] = str(value)
        return params.urlencode()


def read_filters(params, *, today: date, teams: list[Team]) -> Filters:
    """`teams`: the teams the viewer may choose (their scope)."""
    form = FilterForm(params)
    if not form.is_valid():
        raise FilterError([f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()])
    data = form.cleaned_data
    start, end, days = data["start"], data["end"], data["days"]
    problems = []
    if (start is None) != (end is None):
        problems.append("start and end: give both dates, or neither (then a preset of 7, 30 or 90 days applies)")
    elif start and end:
        for name, value in (("start", start), ("end", end)):
            if not EARLIEST <= value <= LATEST:
                problems.append(f"{name} ({value}) is outside {EARLIEST} to {LATEST}")
        if start > end:
            problems.append(f"start ({start}) is after end ({end}): swap them")
        elif (end - start).days + 1 > MAX_DAYS:
            problems.append(f"the range spans {(end - start).days + 1} days; at most {MAX_DAYS} are shown here")
        if end > today:
            problems.append(f"end ({end}) is in the future; the last complete data is for {today}")
    team = None
    if data["team"]:
        team = next((t for t in teams if t.name == data["team"]), None)
        if team is None:
            problems.append(f"team: no team named '{data['team'][:100]}' among the teams you may see")
    if problems:
        raise FilterError(problems)
    preset = None
    if not start:
        preset = days or DEFAULT_DAYS
        start, end = today - timedelta(days=preset - 1), today
    return Filters(period=Period(start, end), team=team, grouping=data["grouping"] or "daily", preset=preset)
