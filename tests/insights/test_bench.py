"""`manage.py insights bench` at a small size: the generated events look like captured ones and the real
rollup counts every one of them; the command measures every query and prints one JSON line."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db.models import Sum

from portal.insights import bench
from portal.insights.models import Event, EventType, Grain, Rollup

# The `data` keys each capture point writes (middleware, search, techdocs, scaffolder, catalog,
# governance services; sign-in has none).
DATA_KEYS = {
    EventType.PAGE_VIEW: {"status", "method"}, EventType.API_CALL: {"status", "method"},
    EventType.ENTITY_VIEW: {"kind"}, EventType.DOCS_VIEW: {"entity"}, EventType.SEARCH: {"via"},
    EventType.SEARCH_CLICK: {"via", "key"}, EventType.TEMPLATE_RUN_STARTED: {"dry_run"},
    EventType.TEMPLATE_RUN_SUCCEEDED: {"dry_run"}, EventType.TEMPLATE_RUN_FAILED: {"dry_run"},
    EventType.REGISTRATION: {"kind"}, EventType.APPROVAL_REQUESTED: {"workflow", "action"},
    EventType.APPROVAL_DECIDED: {"workflow", "action", "stage", "decision", "gates"},
    EventType.APPROVAL_EXECUTED: {"workflow", "action"}, EventType.SIGN_IN: set(),
}


@pytest.mark.django_db(transaction=True)
def test_generated_events_look_captured_and_the_real_rollup_counts_them(on_each_backend):
    b = bench.Bench(events=30_000, users=60, teams=6, days=3)
    b.people()
    with bench._scratch_pragmas():
        b.generate()
    assert Event.objects.count() == 30_000 and sum(b.day_counts) == 30_000 and len(b.day_counts) == 3

    # Generated rows read back through the ORM like captured ones, with the capture points' data keys.
    by_type = Counter()
    for e in Event.objects.order_by("?")[:3000]:
        by_type[e.type] += 1
        assert isinstance(e.occurred_at, datetime) and e.occurred_at.tzinfo is not None
        assert b.start_day <= e.occurred_at.astimezone(UTC).date() <= b.end_day
        assert set(e.data) <= DATA_KEYS[e.type], (e.type, e.data)
        assert e.user_id in b.user_ids and e.team_id == b.user_team[e.user_id]
        if e.type in (EventType.ENTITY_VIEW, EventType.DOCS_VIEW):
            assert e.subject.startswith(f"component:bench/team{b.team_ids.index(e.team_id)}-svc-")
        if e.type == EventType.SEARCH:
            assert e.value is not None and e.subject
    assert by_type.most_common(1)[0][0] == EventType.PAGE_VIEW
    assert Event.objects.filter(type=EventType.SEARCH, value=0).exists()  # zero-result searches
    assert Event.objects.filter(type=EventType.DOCS_VIEW, data__entity__startswith="component:bench/").exists()

    # The real rollup counts every event once per grain.
    b.rollup_all()
    for grain in (Grain.ORG_DAILY, Grain.DAILY):
        assert Rollup.objects.filter(grain=grain).exclude(type="*").aggregate(n=Sum("count"))["n"] == 30_000
    assert not Rollup.objects.filter(grain=Grain.HOURLY).exclude(type="*", team=None).exists()
    b.cleanup()
    assert not Event.objects.exists()


def test_generation_is_deterministic():
    assert bench._seeds(1) == bench._seeds(1) and bench._seeds(1) != bench._seeds(2)
    # The stream at row n is seed × multiplier^n: the same as stepping the recursion n times.
    a = 12345
    for _ in range(10):
        a = a * bench.MULTIPLIERS[0] % bench.MODULUS
    assert bench._seeds(10)[0] == a


@pytest.mark.django_db(transaction=True)
def test_command_measures_every_query_and_prints_one_json_line(capsys):
    call_command("insights", "bench", "--events", "3000", "--users", "20", "--teams", "3", "--days", "2",
                 "--repeat", "1", "--capture-requests", "2")
    captured = capsys.readouterr()
    out = captured.out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    assert result["events"] == 3000 and "insights bench: done" in captured.err
    for group in ("selectors", "api", "pages"):
        assert result[group] and all(v["p95_ms"] >= v["p50_ms"] >= 0 for v in result[group].values())
    assert {"top_docs_monthly", "active_users_hourly", "funnel_team", "top_searches_csv_limit100"} <= set(result["api"])
    assert {"overview", "canvas", "active-users_monthly"} <= set(result["pages"])
    assert result["worst"]["p95"]["query"] and len(result["load_avg"]["start"]) == 3
    assert set(result["budgets"]) >= {"p95_ok", "cpu_p95_ok", "pages_p95_ok", "capture_ok", "rollup_day_ok"}
    assert result["rollup_one_day"]["events"] >= 1500
    assert not Event.objects.exists()  # cleaned up without --keep
