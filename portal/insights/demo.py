"""Six weeks of usage history for the demo organisation, so Insights and the canvas are populated on
`make run` (`manage.py demo insights`; `manage.py demo purge-insights` removes it).

Demo data only, kept apart from real data:
* every generated event carries data={"demo": true};
* the history ends the day before today, or before the first real usage if there is any (a real
  event, or rollups and active days outside a previous demo window), so a rollup bucket, an active
  day or a milestone holds demo data or real data, never both; with less than two weeks free of real
  usage nothing is generated;
* one `DemoHistory` row records the window, the seed and the milestones written: loading again for
  the same window does nothing, a new window replaces the old history, and the purge deletes exactly
  what was generated.

The history is seeded (`SEED`): the same window gives the same events. It tells a believable story:
teams join one after another, activity grows, zero-result searches and template failures fall, and
reviews get quicker. The events follow what the capture records for real (portal/insights/capture.py
callers: subjects, values, data), and the rollups, active user days and milestones are made from them
by the real rollup (`rollup.rollup_range`), as `manage.py insights rollup` does for captured events.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Min, Q

from portal.accounts.models import Team

from . import rollup
from .models import (
    ActiveUserDay,
    Client,
    DemoHistory,
    Event,
    EventType,
    FirstActiveDay,
    Grain,
    Rollup,
    TeamMilestone,
)

SEED = 19
DAYS = 42
MIN_DAYS = 14
DEMO = {"demo": True}
VALUES_SAMPLE = 200  # values kept per rollup row (sorted); a row's count can exceed it

# Day of the window on which each team's first member signs in.
TEAM_JOINS = {"platform": 0, "fraud-ml": 3, "risk-governance": 6, "recsys": 18}
# What each demo user does on an active day: event kind → mean count; "p" is the chance of being
# active on a working day once their team has joined (it grows with adoption).
PROFILES = {
    "alice": {"p": .85, "search": 3, "entity": 4, "docs": 3, "run": .35, "register": .25, "request": .3, "page": 5},
    "bob": {"p": .8, "search": 2, "entity": 3, "docs": 2, "run": .5, "register": .3, "request": .1, "api": 6, "page": 4},
    "heidi": {"p": .45, "search": 2, "entity": 3, "docs": 2, "page": 3},
    "carol": {"p": .8, "search": 2, "entity": 3, "docs": 2, "run": .3, "register": .25, "request": .3, "page": 4},
    "dan": {"p": .75, "search": 3, "entity": 3, "docs": 3, "run": .25, "register": .1, "api": 2, "page": 4},
    "erin": {"p": .8, "search": 1, "entity": 3, "docs": 2, "page": 4},
    "frank": {"p": .55, "entity": 2, "docs": 1, "page": 3},
    "grace": {"p": .9, "search": 2, "entity": 2, "docs": 2, "api": 4, "run": .1, "page": 6},
}
REVIEWERS = ("erin", "frank")
QUERIES = [("fraud", 6), ("fraud detector", 3), ("features", 9), ("card transactions", 4), ("ranker", 2),
           ("churn", 3), ("training pipeline", 2), ("mlflow", 3), ("model card", 5), ("sdk", 2),
           ("session features", 2), ("api", 7)]
ZERO_QUERIES = ["gpu quota", "feature drift alerts", "llm eval", "shap explainability", "kafka topics"]
ENTITIES = ["model:default/fraud-detector", "model:default/chargeback-predictor", "model:default/product-ranker",
            "model:default/churn-predictor", "featureset:default/card-transactions-features",
            "featureset:default/session-features", "dataset:default/card-transactions-2025",
            "component:default/fraud-scoring-service", "api:default/fraud-scoring-api",
            "pipeline:default/fraud-detector-training", "component:default/plinth", "component:default/plinth-sdk"]
# Pages of the demo's built docs (tests/site/test_links.py checks each exists): "<entity ref>/<page path>".
DOCS = ["component:default/plinth/", "component:default/plinth/guide/getting-started/",
        "component:default/plinth/catalog/", "component:default/plinth/scaffolder/", "component:default/plinth-sdk/",
        "component:default/plinth-sdk/quickstart-data-scientist/"]
PAGES = ["/", "/catalog/", "/create/", "/reviews/", "/docs/", "/search/"]
TEMPLATES = ["template:default/ml-model-service", "template:default/training-pipeline", "template:default/feature-set"]
# Registrations each team makes, in order (the first model registration is the funnel's last step).
REGISTRATIONS = {
    "fraud-ml": ["component:default/fraud-scoring-service", "model:default/fraud-detector",
                 "featureset:default/card-transactions-features", "model:default/chargeback-predictor",
                 "pipeline:default/fraud-detector-training", "dataset:default/chargebacks-2025"],
    "recsys": ["featureset:default/session-features", "pipeline:default/session-features-materialisation",
               "model:default/product-ranker", "model:default/churn-predictor", "dataset:default/clickstream-2025"],
}
API_OPERATIONS = ["entities.list", "entities.get", "locations.register", "search.query", "runs.create",
                  "approvals.list"]


class DemoOrgMissing(Exception):
    pass


@dataclass
class Summary:
    created: bool
    start: date | None = None
    end: date | None = None
    events: int = 0
    rollups: int = 0
    active_days: int = 0
    milestones: int = 0
    reason: str = ""

    def __str__(self) -> str:
        if self.start is None:
            return f"demo usage history not generated: {self.reason}"
        what = "generated" if self.created else "already loaded"
        return (f"demo usage history {what}: {self.start} – {self.end}, {self.events} events, {self.rollups} rollup "
                f"rows, {self.active_days} active user days, {self.milestones} team milestones")


def window(today: date) -> tuple[date, date] | None:
    """The days the history covers: DAYS days ending yesterday, or before the first real usage. None
    when that would end more than MIN_DAYS days ago (real usage has its own history by then)."""
    end = today - timedelta(days=1)
    if (first_real := _first_real_day()) is not None:
        end = min(end, first_real - timedelta(days=1))
    if end < today - timedelta(days=MIN_DAYS):
        return None
    return end - timedelta(days=DAYS - 1), end


def _rollups_of(start: datetime, end: datetime):
    """The window's rollup rows, with the org-wide weekly rows of its weeks (the first one starts on the
    Monday before a mid-week window)."""
    return Rollup.objects.filter(Q(bucket__gte=start, bucket__lt=end)
                                 | Q(grain=Grain.ORG_WEEKLY, bucket__gte=rollup.bucket_start(start, Grain.ORG_WEEKLY),
                                     bucket__lt=end))


def _first_real_day() -> date | None:
    days = []
    first_event = Event.objects.exclude(data__has_key="demo").aggregate(first=Min("occurred_at"))["first"]
    if first_event:
        days.append(first_event.date())
    history = DemoHistory.objects.first()
    # Weekly rows start on the Monday before a mid-week window: the daily rows say when data begins.
    rollups, active = Rollup.objects.exclude(grain=Grain.ORG_WEEKLY), ActiveUserDay.objects.all()
    if history:
        rollups = rollups.exclude(bucket__gte=_midnight(history.start),
                                  bucket__lt=_midnight(history.end + timedelta(days=1)))
        active = active.exclude(day__gte=history.start, day__lte=history.end)
    if first_bucket := rollups.aggregate(first=Min("bucket"))["first"]:
        days.append(first_bucket.date())
    if first_day := active.aggregate(first=Min("day"))["first"]:
        days.append(first_day)
    return min(days) if days else None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@transaction.atomic
def load(*, today: date | None = None) -> Summary:
    """Generate the history for the demo organisation (after `portal.accounts.demo.load_org`)."""
    today = today or datetime.now(UTC).date()
    history = DemoHistory.objects.select_for_update().first()
    days = window(today)
    if history and days and (history.seed, history.start, history.end) == (SEED, *days):
        return Summary(False, history.start, history.end, **history.counts)
    if history:
        purge()
        days = window(today)
    if days is None:
        return Summary(False, reason=f"real usage exists from {_first_real_day()}: the demo history would mix "
                                     f"with it (it needs {MIN_DAYS} days before)")
    users = {u.username: u for u in get_user_model().objects.filter(username__in=PROFILES)}
    teams = {t.name: t for t in Team.objects.filter(name__in=TEAM_JOINS)}
    missing = sorted(set(PROFILES) - set(users)) + sorted(set(TEAM_JOINS) - set(teams))
    if missing:
        raise DemoOrgMissing(f"the demo organisation is not loaded (missing {', '.join(missing)}): "
                             "run `manage.py demo load` first")
    events = generate(days[0], days[1], users, teams)
    Event.objects.bulk_create(events, batch_size=1000)
    # A team that reached a milestone for real keeps its own: the rollup moves a milestone earlier when
    # it sees an earlier event, so those it moved into the demo window are put back. The purge deletes
    # the ones the demo created.
    # The same holds for each user's first active day.
    before = {pk: (at, user) for pk, at, user in TeamMilestone.objects.values_list("pk", "reached_at", "user_id")}
    first_days = dict(FirstActiveDay.objects.values_list("pk", "day"))
    start, end = _midnight(days[0]), _midnight(days[1] + timedelta(days=1))
    rollup.rollup_range(start, end)
    for pk, (at, user) in before.items():
        TeamMilestone.objects.filter(pk=pk).exclude(reached_at=at).update(reached_at=at, user_id=user)
    for pk, day in first_days.items():
        FirstActiveDay.objects.filter(pk=pk).exclude(day=day).update(day=day)
    milestone_ids = sorted(set(TeamMilestone.objects.values_list("pk", flat=True)) - set(before))
    first_active_ids = sorted(set(FirstActiveDay.objects.values_list("pk", flat=True)) - set(first_days))
    counts = {"events": len(events),
              "rollups": _rollups_of(start, end).count(),
              "active_days": ActiveUserDay.objects.filter(day__gte=days[0], day__lte=days[1]).count(),
              "milestones": len(milestone_ids)}
    DemoHistory.objects.create(seed=SEED, start=days[0], end=days[1], counts=counts, milestone_ids=milestone_ids,
                               first_active_ids=first_active_ids)
    return Summary(True, days[0], days[1], **counts)


@transaction.atomic
def purge() -> dict[str, int]:
    """Delete the demo history: its events, then roll its window up again (which leaves only what real
    events there are — none, by construction), and the milestones and first active days it created."""
    out = {"events": Event.objects.filter(data__has_key="demo").delete()[0], "rollups": 0, "active_days": 0,
           "milestones": 0}
    for history in DemoHistory.objects.all():
        start, end = _midnight(history.start), _midnight(history.end + timedelta(days=1))
        out["rollups"] += _rollups_of(start, end).count()
        out["active_days"] += ActiveUserDay.objects.filter(day__gte=history.start, day__lte=history.end).count()
        rollup.rollup_range(start, end)
        out["milestones"] += TeamMilestone.objects.filter(pk__in=history.milestone_ids).delete()[0]
        FirstActiveDay.objects.filter(pk__in=history.first_active_ids).delete()
        history.delete()
    return out


# -- the story ------------------------------------------------------------------------------------


class _Day:
    """One user's events on one day, appended in time order."""

    def __init__(self, rng: random.Random, day: date, user, team, out: list[Event]):
        self.rng, self.user, self.team, self.out = rng, user, team, out
        self.clock = _midnight(day) + timedelta(hours=rng.uniform(7.5, 10), seconds=rng.randrange(60))

    def add(self, type_: str, subject: str = "", value: float | None = None, *, client: str = Client.BROWSER,
            at: datetime | None = None, team=None, **data) -> datetime:
        if at is None:
            self.clock += timedelta(seconds=self.rng.randrange(20, 900))
            at = self.clock
        self.out.append(Event(occurred_at=at, type=type_, user=self.user, team=team or self.team, subject=subject,
                              client=client, value=value, data={**DEMO, **data}))
        return at


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def generate(start: date, end: date, users: dict, teams: dict) -> list[Event]:
    """The events of the window, in a deterministic order (SEED)."""
    from portal.accounts.demo import USERS

    rng = random.Random(SEED)  # noqa: S311 (made-up demo data, seeded to be repeatable)
    days = (end - start).days + 1
    home = {name: teams[USERS[name][1][0][0]] for name in PROFILES}
    out: list[Event] = []
    registered = {team: 0 for team in REGISTRATIONS}
    requests = 0
    for offset in range(days):
        day = start + timedelta(days=offset)
        progress = offset / max(days - 1, 1)  # 0 → 1 across the window: adoption grows, friction falls
        weekend = day.weekday() >= 5
        for name, profile in PROFILES.items():
            team = home[name]
            joined = TEAM_JOINS[team.name]
            if offset < joined:
                continue
            first_day = offset == joined and name == next(n for n in PROFILES if home[n] == team)
            chance = profile["p"] * (.55 + .45 * progress) * (.12 if weekend else 1)
            if not first_day and rng.random() >= chance:
                continue
            act = _Day(rng, day, users[name], team, out)
            act.add(EventType.SIGN_IN)
            for _ in range(_poisson(rng, profile["page"])):
                act.add(EventType.PAGE_VIEW, rng.choice(PAGES))
            for _ in range(_poisson(rng, profile.get("search", 0))):
                _search(act, rng, progress)
            for _ in range(_poisson(rng, profile.get("entity", 0))):
                ref = rng.choice(ENTITIES)
                act.add(EventType.ENTITY_VIEW, ref, kind=ref.split(":")[0])
            for _ in range(_poisson(rng, profile.get("docs", 0))):
                page = rng.choice(DOCS)
                act.add(EventType.DOCS_VIEW, page)
                if rng.random() < .06:  # "Was this useful?" answered now and then, mostly yes
                    entity, _, path = page.partition("/")
                    ref = f"{entity}/{path.split('/')[0]}"
                    act.add(EventType.FEEDBACK, f"docs:{ref}#{'/'.join(path.split('/')[1:])}",
                            kind="docs", useful=rng.random() < .75, created=True)
            for _ in range(_poisson(rng, profile.get("api", 0) * (.4 + .6 * progress))):
                act.add(EventType.API_CALL, rng.choice(API_OPERATIONS), client=rng.choice([Client.SDK, Client.CLI]))
            if rng.random() < profile.get("run", 0) or (first_day and team.name in REGISTRATIONS):
                if first_day and team.name in REGISTRATIONS:
                    _cancelled_first_try(act)
                _template_run(act, rng, progress)
            due = team.name in REGISTRATIONS and registered[team.name] < len(REGISTRATIONS[team.name])
            # fraud-ml registers its first model within two days of joining; recsys takes its time
            early = (offset - joined in (1, 2) and team.name == "fraud-ml") or offset - joined == 3
            if due and (rng.random() < profile.get("register", 0) or (early and registered[team.name] < 2)):
                ref = REGISTRATIONS[team.name][registered[team.name]]
                act.add(EventType.REGISTRATION, f"https://git.example.com/{team.name}/{ref.split('/')[-1]}"
                        "/catalog-info.yaml", 1, kind=ref.split(":")[0])
                registered[team.name] += 1
            if rng.random() < profile.get("request", 0):
                requests += 1
                _approval(act, rng, progress, requests, users)
    # Reviews still open at the window's end (and anything else running over) happen after it: not here.
    limit = _midnight(end + timedelta(days=1))
    return sorted((e for e in out if e.occurred_at < limit), key=lambda e: e.occurred_at)


def _search(act: _Day, rng: random.Random, progress: float) -> None:
    if rng.random() < .2 - .13 * progress:  # zero-result searches fall as the catalog fills in
        act.add(EventType.SEARCH, rng.choice(ZERO_QUERIES), 0)
        return
    query, results = rng.choice(QUERIES)
    act.add(EventType.SEARCH, query, results)
    if rng.random() < .35 + .2 * progress:
        act.add(EventType.SEARCH_CLICK, query, float(min(results, 1 + int(rng.expovariate(.9)))))


def _template_run(act: _Day, rng: random.Random, progress: float) -> None:
    template = rng.choice(TEMPLATES)
    started = act.add(EventType.TEMPLATE_RUN_STARTED, template)
    duration = round(rng.lognormvariate(math.log(75 - 25 * progress), .35), 1)
    ok = rng.random() < .8 + .17 * progress
    act.add(EventType.TEMPLATE_RUN_SUCCEEDED if ok else EventType.TEMPLATE_RUN_FAILED, template, duration,
            client=Client.SYSTEM, at=started + timedelta(seconds=duration), outcome="succeeded" if ok else "failed")


def _cancelled_first_try(act: _Day) -> None:
    """A team's first day: its first run was of the wrong template, cancelled 40 s in, before the real one.
    Scripted (no random draw), so the rest of the story is what it was before runs could be cancelled."""
    started = act.clock + timedelta(seconds=30)
    act.out.append(Event(occurred_at=started, type=EventType.TEMPLATE_RUN_STARTED, user=act.user, team=act.team,
                         subject=TEMPLATES[-1], client=Client.BROWSER, data=dict(DEMO)))
    act.out.append(Event(occurred_at=started + timedelta(seconds=40), type=EventType.TEMPLATE_RUN_CANCELLED,
                         user=act.user, team=act.team, subject=TEMPLATES[-1], client=Client.SYSTEM, value=40.0,
                         data={**DEMO, "outcome": "cancelled"}))
    act.clock = started + timedelta(seconds=40)


def _approval(act: _Day, rng: random.Random, progress: float, number: int, users: dict) -> None:
    subject = f"request:demo-{number}"
    submitted = act.add(EventType.APPROVAL_REQUESTED, subject, workflow="model-promotion", action="promote-model-version")
    lead = timedelta(hours=rng.lognormvariate(math.log(40 - 26 * progress), .5))
    decided = submitted + lead
    reviewer = users[rng.choice(REVIEWERS)]
    act.out.append(Event(occurred_at=decided, type=EventType.APPROVAL_DECIDED, user=reviewer, team=act.team,
                         subject=subject, value=round(lead.total_seconds()),
                         data={**DEMO, "decision": "approve", "workflow": "model-promotion",
                               "action": "promote-model-version", "stage": "risk-review"}))
    executed = decided + timedelta(seconds=rng.randrange(20, 240))
    act.out.append(Event(occurred_at=executed, type=EventType.APPROVAL_EXECUTED, user=act.user, team=act.team,
                         subject=subject, client=Client.SYSTEM, value=round((executed - submitted).total_seconds()),
                         data={**DEMO, "workflow": "model-promotion", "action": "promote-model-version",
                               "requester": act.user.pk}))
