"""`manage.py insights bench`: usage analytics at scale, one JSON line.

Generates N raw events (default 10,000,000) across 5,000 users and 200 teams over `days` days, with
the shape of real use (page views most, then entity/docs views, searches, API calls; template runs,
registrations and approvals rare; subjects tied to teams as entities are; a few users and subjects
far more popular than most; working hours, quieter weekends), in bulk inside the database (one
INSERT … SELECT per day). Rolls every day up with the real rollup, then measures every dashboard
selector, every API type × grouping and every dashboard page (p50/p95, wall and CPU, over repeated
calls), the capture overhead of a page request with analytics on vs off in the same run, and the
rollup of the busiest day on its own. Progress goes to stderr, the JSON line to stdout.

Runs against the configured database: point PLINTH_VAR_DIR (SQLite) or DATABASE_URL at a scratch one
(`make insights-bench` does). Generated teams and users are named `bench-…`; --keep leaves everything.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.test import Client
from django.test.utils import override_settings

from portal.accounts.models import Membership, Role, Team
from portal.core.db import sqlite_pragmas

from . import capture, rollup, selectors
from .models import ActiveUserDay, Event, Rollup, TeamMilestone

# (type, share of events)
MIX = [("page_view", 0.48), ("entity_view", 0.15), ("docs_view", 0.08), ("search", 0.10),
       ("search_click", 0.04), ("api_call", 0.09), ("sign_in", 0.02), ("template_run_started", 0.012),
       ("template_run_succeeded", 0.009), ("template_run_failed", 0.003), ("registration", 0.002),
       ("approval_requested", 0.002), ("approval_decided", 0.0015), ("approval_executed", 0.0005)]
ROUTES = ["site:home", "catalog:entity-list", "catalog:entity-detail", "search:page", "techdocs:page",
          "governance:request-list", "governance:request-detail", "scaffolder:template-list", "accounts:teams",
          "techdocs:index"]
API_ROUTES = ["catalog-api:entity-list", "catalog-api:entity-by-name", "api-search", "governance-api-requests",
              "api-scaffolder-runs"]
WORDS = ["fraud", "churn", "ranker", "credit", "risk", "score", "forecast", "demand", "price", "ads", "embed",
         "vision", "speech", "anomaly", "supply", "route", "feature", "dataset", "model", "pipeline"]
API_TYPES = ("active_users", "top_templates", "top_searches", "top_entities", "top_docs", "funnel")
TEMPLATES = [f"template:default/bench-template-{i}" for i in range(25)]
CLIENTS = ["browser"] * 6 + ["sdk", "cli", "api"]
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 10, 12, 14, 14, 12, 9, 6, 4, 3, 2, 1, 1]
USER_SLOTS, TYPE_SLOTS, HOUR_SLOTS, SUBJECT_SLOTS = 65536, 10000, 1024, 1024
SLOT_TABLES = {
    "bench_slot_user": "k INTEGER PRIMARY KEY, user_id INTEGER, team_id INTEGER, team_pos INTEGER",
    "bench_slot_type": "k INTEGER PRIMARY KEY, type TEXT, pos INTEGER",
    "bench_slot_hour": "k INTEGER PRIMARY KEY, hour INTEGER",
    "bench_slot_subject": "k INTEGER PRIMARY KEY, mode INTEGER, pre TEXT, post TEXT, value DOUBLE PRECISION, "
                          "data_pre TEXT, data_post TEXT, client TEXT",
}
MODULUS = 2_147_483_647  # 2^31 - 1: MINSTD; products of a state and a multiplier fit 64-bit integers
MULTIPLIERS = (48271, 16807, 69621)


def _seeds(first: int) -> list[int]:
    """The three streams' states at row `first` (each stream is seed × multiplier^row)."""
    return [seed * pow(m, first, MODULUS) % MODULUS for seed, m in zip((12345, 67890, 424242), MULTIPLIERS,
                                                                        strict=True)]


def _generate_sql(sqlite: bool) -> str:
    """One day of events from the slot tables. Parameters: first row, last row, day (ISO), the three
    streams' states at the first row. Stream a picks the type (and the microseconds), b the user and
    the hour, c the subject, the second within the hour and a request number."""
    second = "((seq.c / 1024) %% 3600)"
    micro = "((seq.a / 10000) %% 1000000)"
    if sqlite:  # Django's text for a UTC datetime
        at = f"%s || ' ' || printf('%%02d:%%02d:%%02d.%%06d', h.hour, {second} / 60, {second} %% 60, {micro})"
        data = "{}"
    else:
        at = (f"(CAST(%s AS timestamp) + (h.hour * 3600 + {second}) * interval '1 second' "
              f"+ {micro} * interval '1 microsecond') AT TIME ZONE 'UTC'")
        data = "CAST({} AS jsonb)"
    subject = ("CASE s.mode WHEN 1 THEN s.pre || u.team_pos || s.post "
               "WHEN 2 THEN s.pre || ((seq.c / 1024) %% 100000) ELSE s.pre END")
    extra = data.format("CASE WHEN s.mode = 1 AND s.data_post <> '' THEN s.data_pre || u.team_pos || s.data_post "
                        "ELSE s.data_pre END")
    m = MODULUS
    return (  # only constants of this module are formatted in; the day's values are parameters
        "INSERT INTO insights_event (occurred_at, type, user_id, team_id, subject, client, value, data) "  # noqa: S608
        "WITH RECURSIVE seq(n, a, b, c) AS (SELECT CAST(%s AS bigint), CAST(%s AS bigint), CAST(%s AS bigint), "
        "CAST(%s AS bigint) UNION ALL "
        f"SELECT n + 1, a * {MULTIPLIERS[0]} %% {m}, b * {MULTIPLIERS[1]} %% {m}, c * {MULTIPLIERS[2]} %% {m} "
        "FROM seq WHERE n < %s) "
        f"SELECT {at}, t.type, u.user_id, u.team_id, {subject}, s.client, s.value, {extra} FROM seq "
        f"JOIN bench_slot_type t ON t.k = seq.a %% {TYPE_SLOTS} "
        f"JOIN bench_slot_user u ON u.k = seq.b %% {USER_SLOTS} "
        f"JOIN bench_slot_hour h ON h.k = (seq.b / {USER_SLOTS}) %% {HOUR_SLOTS} "
        f"JOIN bench_slot_subject s ON s.k = t.pos * {SUBJECT_SLOTS} + seq.c %% {SUBJECT_SLOTS}"
    )


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * len(values) + 0.5)) - 1))]


def _load() -> list[float]:
    """The machine's load average (1, 5, 15 min): wall times above CPU times mean waiting for a core."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


@contextmanager
def _scratch_pragmas():
    """While generating into SQLite: no fsync per commit and a larger page cache (the scratch
    database `make insights-bench` makes is thrown away); the settings' own PRAGMAs come back after,
    so the rollups and queries run as configured."""
    with sqlite_pragmas(synchronous="OFF", cache_size=-262144):
        yield


def _timed(fn, repeat: int) -> dict:
    """Wall and CPU time of `repeat` calls (nearest-rank percentiles). On a shared machine wall
    time includes waiting for a core; on SQLite every query runs inside this process, so CPU time is the
    query's own cost."""
    runs, cpu = [], []
    fn()  # untimed: the process's first call pays imports and warm-up a running server has behind it
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"p50_ms": round(_pct(runs, 0.5), 2), "p95_ms": round(_pct(runs, 0.95), 2),
            "cpu_p50_ms": round(_pct(cpu, 0.5), 2), "cpu_p95_ms": round(_pct(cpu, 0.95), 2)}


class Bench:
    def __init__(self, *, events: int, users: int, teams: int, days: int, seed: int = 11,
                 repeat: int = 50, capture_requests: int = 500, progress=None) -> None:
        self.n, self.n_users, self.n_teams, self.days = events, users, teams, days
        self.rng = random.Random(seed)  # noqa: S311 (reproducible data, not secrets)
        self.repeat = repeat
        self.capture_requests = capture_requests
        self.progress = progress or (lambda message: None)
        self.end_day = datetime.now(UTC).date() - timedelta(days=1)
        self.start_day = self.end_day - timedelta(days=days - 1)

    # --- data ------------------------------------------------------------------------------
    def people(self) -> None:
        User = get_user_model()
        Team.objects.bulk_create([Team(name=f"bench-team-{i}", title=f"Bench team {i}") for i in range(self.n_teams)],
                                 ignore_conflicts=True)
        self.team_ids = list(Team.objects.filter(name__startswith="bench-team-").order_by("pk")
                             .values_list("pk", flat=True))
        unusable = make_password(None)
        User.objects.bulk_create([User(username=f"bench-user-{i}", password=unusable) for i in range(self.n_users)],
                                 ignore_conflicts=True, batch_size=1000)
        self.user_ids = list(User.objects.filter(username__startswith="bench-user-").order_by("pk")
                             .values_list("pk", flat=True))
        self.user_team = {u: self.team_ids[i % len(self.team_ids)] for i, u in enumerate(self.user_ids)}
        Membership.objects.bulk_create([Membership(user_id=u, team_id=t, role=Role.MEMBER)
                                        for u, t in self.user_team.items()], ignore_conflicts=True, batch_size=1000)
        self.admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
            "bench-admin", "bench-admin@example.com", None)

    # Generation runs inside the database: Python draws small lookup tables from the seeded
    # generator (which user, hour, type and subject a slot stands for, skewed as real use is), and one
    # INSERT … SELECT per day turns a numbered sequence into events, three MINSTD streams (multipliers
    # 48271, 16807, 69621 modulo 2^31 - 1) choosing each row's slots. No Python call per event, and the
    # same rows for the same seed. The rows are those the capture path writes (write_batch): the same
    # columns, the datetime text SQLite stores, and the same `data` keys per type.
    def _slots(self) -> dict[str, list[tuple]]:
        rng = self.rng
        team_pos = {t: i for i, t in enumerate(self.team_ids)}
        n_users = len(self.user_ids)
        users = []
        for k in range(USER_SLOTS):  # a few users far more active than most
            user = self.user_ids[int(rng.paretovariate(0.9) * 37) % n_users]
            users.append((k, user, self.user_team[user], team_pos[self.user_team[user]]))
        type_rows, k = [], 0
        for i, (type_, share) in enumerate(MIX):
            for _ in range(round(share * TYPE_SLOTS)):
                type_rows.append((k, type_, i))
                k += 1
        while k < TYPE_SLOTS:
            type_rows.append((k, MIX[0][0], 0))
            k += 1
        # Working hours: each hour of the day gets its share of the slots (a quota, not random draws).
        hours = [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(round(w * HOUR_SLOTS / sum(HOUR_WEIGHTS)))]
        hours += [HOUR_WEIGHTS.index(max(HOUR_WEIGHTS))] * (HOUR_SLOTS - len(hours))
        hours = hours[:HOUR_SLOTS]
        subjects = [(i * SUBJECT_SLOTS + j, *self._subject(type_)) for i, (type_, _) in enumerate(MIX)
                    for j in range(SUBJECT_SLOTS)]
        return {"user": users, "type": type_rows, "hour": list(enumerate(hours)), "subject": subjects}

    def _subject(self, type_: str) -> tuple:
        """One subject slot: (per_team, subject prefix, suffix, value, data prefix, data suffix, client).
        A per-team slot's subject and data are prefix + the team's position + suffix; mode 2 (approvals)
        puts a request number after the prefix."""
        rng = self.rng
        ok = json.dumps({"status": 200, "method": "GET"})
        if type_ == "page_view":
            return 0, ROUTES[int(rng.paretovariate(1.0)) % len(ROUTES)], "", None, ok, "", "browser"
        if type_ == "api_call":
            return 0, API_ROUTES[int(rng.paretovariate(1.0)) % len(API_ROUTES)], "", None, ok, "", rng.choice(CLIENTS)
        if type_ == "entity_view":
            svc = int(rng.paretovariate(1.2)) % 12
            return 1, "component:bench/team", f"-svc-{svc}", None, json.dumps({"kind": "component"}), "", "browser"
        if type_ == "docs_view":
            svc, page = rng.randrange(4), int(rng.paretovariate(1.1)) % 6
            return (1, "component:bench/team", f"-svc-{svc}/guide/page-{page}", None,
                    '{"entity": "component:bench/team', f'-svc-{svc}"}}', "browser")
        if type_ in ("search", "search_click"):
            query = f"{WORDS[int(rng.paretovariate(1.1)) % len(WORDS)]} {WORDS[rng.randrange(len(WORDS))]}"
            via = rng.choice(["page", "page", "page", "typeahead", "api"])
            client = "sdk" if via == "api" else "browser"
            if type_ == "search":
                value = 0.0 if rng.random() < 0.08 else float(rng.randrange(1, 40))
                return 0, query, "", value, json.dumps({"via": via}), "", client
            rank = float(min(int(rng.paretovariate(1.5)), 9))
            key = f"catalog:component:bench/team{rng.randrange(self.n_teams)}-svc-{rng.randrange(12)}"
            return 0, query, "", rank, json.dumps({"via": via, "key": key}), "", client
        if type_.startswith("template_run"):
            template = TEMPLATES[int(rng.paretovariate(1.3)) % len(TEMPLATES)]
            data = json.dumps({"dry_run": rng.random() < 0.1})
            if type_ == "template_run_started":
                return 0, template, "", None, data, "", "browser"
            return 0, template, "", round(rng.lognormvariate(4, 0.5), 3), data, "", "system"
        if type_ == "registration":
            kind = "model" if rng.random() < 0.3 else "component"
            return (1, "https://git.example.com/team", f"/repo-{rng.randrange(8)}/catalog-info.yaml",
                    float(1 + int(rng.paretovariate(2.0)) % 6), json.dumps({"kind": kind}), "", "browser")
        if type_.startswith("approval"):
            data = {"workflow": "promote", "action": "promote"}
            value, client = None, "browser"
            if type_ == "approval_decided":
                blocked = rng.random() < 0.1
                data.update(stage=rng.choice(["risk", "platform"]), decision="blocked" if blocked else "approved")
                if blocked:
                    data["gates"] = [rng.choice(["model-card", "eval-threshold", "owner"])]
                value = round(rng.expovariate(1 / 7200), 1)
            elif type_ == "approval_executed":
                value, client = round(rng.expovariate(1 / 86400), 1), "system"
            return 2, "request:", "", value, json.dumps(data), "", client
        return 0, "", "", None, "{}", "", "browser"  # sign_in

    def _day_counts(self) -> list[int]:
        """Events per day: weekdays busier than weekends (a fifth as much), slowly growing."""
        weights = [(0.2 if (self.start_day + timedelta(days=d)).weekday() >= 5 else 1.0) * (1 + 0.3 * d / self.days)
                   for d in range(self.days)]
        counts = [int(self.n * w / sum(weights)) for w in weights]
        counts[max(range(self.days), key=lambda d: weights[d])] += self.n - sum(counts)
        return counts

    def generate(self) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        slots = self._slots()
        sqlite = connection.vendor == "sqlite"
        with connection.cursor() as cur:
            for name, cols in SLOT_TABLES.items():
                cur.execute(f"DROP TABLE IF EXISTS {name}")
                cur.execute(f"CREATE TEMPORARY TABLE {name} ({cols})")
                marks = ", ".join(["%s"] * len(slots[name.removeprefix("bench_slot_")][0]))
                cur.executemany(f"INSERT INTO {name} VALUES ({marks})",  # noqa: S608 (constant names)
                                slots[name.removeprefix("bench_slot_")])
        first = 1
        self.day_counts = self._day_counts()
        for d, count in enumerate(self.day_counts):
            if not count:
                continue
            day = self.start_day + timedelta(days=d)
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(_generate_sql(sqlite), [first, *_seeds(first), first + count - 1, day.isoformat()])
            first += count
        with connection.cursor() as cur:
            for name in SLOT_TABLES:
                cur.execute(f"DROP TABLE {name}")
        self.generate_cpu_s = time.process_time() - c0  # SQLite inserts in this process: its own work
        return time.perf_counter() - t0

    # --- measurements ----------------------------------------------------------------------
    def rollup_all(self) -> dict:
        t0 = time.perf_counter()
        day_seconds, day_cpu = [], []
        for d in range(self.days):
            start = datetime.combine(self.start_day + timedelta(days=d), datetime.min.time(), tzinfo=UTC)
            t, c = time.perf_counter(), time.process_time()
            rollup.rollup_range(start, start + timedelta(days=1))
            day_seconds.append(time.perf_counter() - t)
            day_cpu.append(time.process_time() - c)
        # Wall time includes waiting for a shared machine's CPU and disk; CPU time is this process's own.
        return {"rollup_all_s": round(time.perf_counter() - t0, 2),
                "rollup_day_s_max": round(max(day_seconds), 2),
                "rollup_day_s_median": round(statistics.median(day_seconds), 2),
                "rollup_day_cpu_s_median": round(statistics.median(day_cpu), 2),
                "rollup_day_cpu_s_max": round(max(day_cpu), 2)}

    def selectors(self) -> dict:
        """Every dashboard selector, organisation-wide and for one team, over 30 days (the dashboards'
        default), a week and a day."""
        s, e = self.start_day, self.end_day
        team = self.team_ids[0]
        week = e - timedelta(days=6)
        cases = {
            "active_users_daily": lambda: selectors.active_users(s, e, "daily"),
            "active_users_weekly": lambda: selectors.active_users(s, e, "weekly"),
            "active_users_monthly": lambda: selectors.active_users(s, e, "monthly"),
            "active_users_hourly_day": lambda: selectors.active_users(e, e, "hourly"),
            "active_users_daily_team": lambda: selectors.active_users(s, e, "daily", team=team),
            "active_users_weekly_team": lambda: selectors.active_users(s, e, "weekly", team=team),
            "active_users_per_team": lambda: selectors.active_users_per_team(s, e),
            "active_users_per_user": lambda: selectors.active_users_per_user(s, e),
            "top_templates": lambda: selectors.top_templates(s, e),
            "top_templates_team": lambda: selectors.top_templates(s, e, team=team),
            "top_entities": lambda: selectors.top_entities(s, e),
            "top_entities_week": lambda: selectors.top_entities(week, e),
            "top_entities_team": lambda: selectors.top_entities(s, e, team=team),
            "top_docs": lambda: selectors.top_docs(s, e),
            "top_docs_team": lambda: selectors.top_docs(s, e, team=team),
            "top_searches": lambda: selectors.top_searches(s, e),
            "top_searches_team": lambda: selectors.top_searches(s, e, team=team),
            "zero_result_searches": lambda: selectors.zero_result_searches(s, e),
            "search_volume_daily": lambda: selectors.search_volume(s, e, "daily"),
            "funnel": lambda: selectors.funnel(start=s, end=e),
            "funnel_team": lambda: selectors.funnel(team=team, start=s, end=e),
            "governance_flow": lambda: selectors.governance_flow(s, e),
            "catalog_health": lambda: selectors.catalog_health(),
        }
        return {name: _timed(fn, self.repeat) for name, fn in cases.items()}

    def _client(self) -> Client:
        client = Client(HTTP_HOST="localhost")  # an ALLOWED_HOSTS name of every profile
        client.force_login(self.admin)
        return client

    def _get_cases(self, urls: dict[str, str]) -> dict:
        client = self._client()
        out = {}
        for name, url in urls.items():
            def call(url=url):
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code, response.content[:300])
            out[name] = _timed(call, self.repeat)
        return out

    def api(self) -> dict:
        """`GET /api/v1/insights/events`: every type × grouping over 30 days for the organisation, every
        type for one team, per-user rows and a CSV answer."""
        s, e = self.start_day.isoformat(), self.end_day.isoformat()
        base = "/api/v1/insights/events?start_date={s}&end_date={e}&type={t}"
        team = "bench-team-0"
        urls = {}
        for type_ in API_TYPES:
            for grouping in selectors.GROUPINGS:
                urls[f"{type_}_{grouping}"] = base.format(s=s, e=e, t=type_) + f"&grouping={grouping}"
            urls[f"{type_}_team"] = base.format(s=s, e=e, t=type_) + f"&team={team}"
        urls["active_users_per_user"] = base.format(s=s, e=e, t="active_users") + "&per_user=true&limit=100"
        urls["top_searches_csv_limit100"] = base.format(s=s, e=e, t="top_searches") + "&format=csv&limit=100"
        return self._get_cases(urls)

    def pages(self) -> dict:
        """The dashboard pages as a platform admin opens them: the whole view (filters, selectors,
        charts, template) over 30 days, one team's, monthly grouping, and the canvas with its live KPIs."""
        s, e = self.start_day.isoformat(), self.end_day.isoformat()
        urls = {}
        for slug in ("", "active-users/", "funnel/", "usage/", "searches/", "governance/", "catalog-health/"):
            name = slug.rstrip("/") or "overview"
            urls[name] = f"/insights/{slug}?start={s}&end={e}"
        urls["active-users_team"] = f"/insights/active-users/?start={s}&end={e}&team=bench-team-0"
        urls["active-users_monthly"] = f"/insights/active-users/?start={s}&end={e}&grouping=monthly"
        urls["usage_team"] = f"/insights/usage/?start={s}&end={e}&team=bench-team-0"
        urls["canvas"] = "/insights/canvas/"
        return self._get_cases(urls)

    def capture_overhead(self, requests: int = 500) -> dict:
        """The same page, alternating analytics off and on, as a signed-in user: p50 of each, and the
        median of the paired differences (each "on" request against the "off" one just before it, so
        the machine's drift cancels out). Plus the cost of one record() call on its own."""
        client = Client(HTTP_HOST="localhost")  # an ALLOWED_HOSTS name of every profile
        client.force_login(self.admin)
        url = "/teams/"
        client.get(url)
        on, off = [], []
        for i in range(requests * 2):
            enabled = i % 2 == 1  # off, then on: pairs
            with override_settings(PLINTH_ANALYTICS=enabled):
                t0 = time.perf_counter()
                response = client.get(url)
                (on if enabled else off).append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        paired = [a - b for a, b in zip(on, off, strict=True)]
        t0 = time.perf_counter()
        for _ in range(10_000):
            capture.record("page_view", user=self.admin, subject="site:home")
        record_us = (time.perf_counter() - t0) / 10_000 * 1e6
        capture._state.pop("buffer", None)
        return {"page": url, "requests_each": requests, "on_p50_ms": round(statistics.median(on), 3),
                "off_p50_ms": round(statistics.median(off), 3),
                "overhead_p50_ms": round(statistics.median(paired), 3), "record_call_us": round(record_us, 1)}

    def rollup_one_day(self) -> dict:
        """The busiest day rolled up again, on its own (what the beat does for yesterday and today),
        after the dashboards' rows of every other day exist."""
        busiest = max(range(self.days), key=lambda d: self.day_counts[d])
        day = self.start_day + timedelta(days=busiest)
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        t, c = time.perf_counter(), time.process_time()
        rollup.rollup_range(start, start + timedelta(days=1))
        return {"day": day.isoformat(), "events": self.day_counts[busiest],
                "wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2)}

    def run(self) -> dict:
        t_all, load_start = time.perf_counter(), _load()
        say = self.progress
        self.people()
        with _scratch_pragmas():
            generate_s = self.generate()
        say(f"generated {self.n:,} events in {generate_s:.1f} s")
        rolled = self.rollup_all()
        say(f"rolled up {self.days} days in {rolled['rollup_all_s']} s")
        load_queries = _load()
        sel = self.selectors()
        say("selectors measured")
        api = self.api()
        say("API measured")
        pages = self.pages()
        say("dashboard pages measured")
        overhead = self.capture_overhead(self.capture_requests)
        one_day = self.rollup_one_day()
        say(f"done in {time.perf_counter() - t_all:.0f} s")
        # The budget is the issue's: every dashboard selector and API query. Whole dashboard pages
        # (several selectors, charts, the template) are reported beside it.
        queries = {f"{group}.{name}": v for group, cases in (("selectors", sel), ("api", api))
                   for name, v in cases.items()}
        worst = max(queries, key=lambda k: queries[k]["p95_ms"])
        worst_cpu = max(queries, key=lambda k: queries[k]["cpu_p95_ms"])
        worst_page = max(pages, key=lambda k: pages[k]["p95_ms"])
        return {
            "bench": "insights", "database": connection.vendor, "events": self.n, "users": self.n_users,
            "teams": self.n_teams, "days": self.days, "repeat": self.repeat, "cpus": os.cpu_count(),
            "generate_s": round(generate_s, 1), "generate_cpu_s": round(self.generate_cpu_s, 1),
            "events_per_s_generated": int(self.n / generate_s) if generate_s else None,
            "events_per_cpu_s_generated": int(self.n / self.generate_cpu_s) if self.generate_cpu_s else None,
            "events_per_day": {"min": min(self.day_counts), "max": max(self.day_counts)}, **rolled,
            "rollup_one_day": one_day,
            "rollup_rows": Rollup.objects.count(), "active_user_days": ActiveUserDay.objects.count(),
            "milestones": TeamMilestone.objects.count(),
            "selectors": sel, "api": api, "pages": pages, "capture": overhead,
            "worst": {"p95": {"query": worst, **queries[worst]}, "cpu_p95": {"query": worst_cpu, **queries[worst_cpu]},
                      "page_p95": {"page": worst_page, **pages[worst_page]}},
            "budgets": {"p95_ms_max": queries[worst]["p95_ms"], "p95_ok": queries[worst]["p95_ms"] <= 200,
                        "cpu_p95_ms_max": queries[worst_cpu]["cpu_p95_ms"],
                        "cpu_p95_ok": queries[worst_cpu]["cpu_p95_ms"] <= 200,
                        "pages_p95_ok": pages[worst_page]["p95_ms"] <= 200,
                        "capture_ok": overhead["overhead_p50_ms"] <= 1.0,
                        "rollup_day_ok": one_day["wall_s"] <= 10.0,
                        "rollup_day_cpu_ok": one_day["cpu_s"] <= 10.0},
            "load_avg": {"start": load_start, "queries": load_queries, "end": _load()},
            "total_s": round(time.perf_counter() - t_all, 1),
        }

    def cleanup(self) -> None:
        Event.objects.filter(team_id__in=self.team_ids).delete()
        Rollup.objects.all().delete()
        ActiveUserDay.objects.filter(user_id__in=self.user_ids).delete()
        TeamMilestone.objects.filter(team_id__in=self.team_ids).delete()
        Membership.objects.filter(team_id__in=self.team_ids).delete()
        get_user_model().objects.filter(pk__in=self.user_ids).delete()
        Team.objects.filter(pk__in=self.team_ids).delete()


def run(*, events: int, users: int = 5000, teams: int = 200, days: int = 30, keep: bool = False,
        repeat: int = 50, capture_requests: int = 500, progress=None) -> dict:
    # Capture during the bench goes to this process's buffer and is never flushed into the data.
    # The API's rate limit still counts every call (its cost is part of a request's), but never refuses
    # the bench's thousands of reads a minute.
    rates = {**settings.PLINTH_API_RATES, "read": "1000000/min"}
    with override_settings(PLINTH_ANALYTICS_FLUSH_THREAD=False, PLINTH_ANALYTICS_REDIS_URL=None,
                           PLINTH_API_RATES=rates):
        capture._state.pop("buffer", None)
        # One access-log line per measured request would be thousands of lines on stderr.
        access = logging.getLogger("plinth.access")
        level = access.level
        access.setLevel(logging.WARNING)
        bench = Bench(events=events, users=users, teams=teams, days=days, repeat=repeat,
                      capture_requests=capture_requests, progress=progress)
        try:
            return bench.run()
        finally:
            access.setLevel(level)
            capture._state.pop("buffer", None)
            if not keep:
                bench.cleanup()

